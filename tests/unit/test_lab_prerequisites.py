"""A missing prerequisite is one clear line saying what to do, never a traceback."""

from __future__ import annotations

import pytest

from sshward_lab import LabError, cli, engine, images
from sshward_lab.lab import parse_target


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setattr(engine, "engine_running", lambda: False)


def test_build_without_root_says_run_as_root(monkeypatch):
    monkeypatch.setattr(images.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        images._check_build_prerequisites()


def test_build_without_debootstrap_says_what_to_install(monkeypatch):
    monkeypatch.setattr(images.os, "geteuid", lambda: 0)
    monkeypatch.setattr(images.shutil, "which", lambda name: None)
    with pytest.raises(LabError, match="apt-get install debootstrap"):
        images._check_build_prerequisites()


def test_engine_missing_as_non_root(monkeypatch, no_engine):
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    monkeypatch.setattr(engine.os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match=r"apt-get install docker.io"):
        engine.ensure_engine()


def test_engine_not_startable(monkeypatch, no_engine, tmp_path):
    monkeypatch.setattr(engine.shutil, "which", lambda name: f"/usr/sbin/{name}")
    monkeypatch.setattr(engine.os, "geteuid", lambda: 0)
    monkeypatch.setattr(engine, "_systemd_is_init", lambda: False)
    monkeypatch.setattr(engine, "_wait_for_engine", lambda seconds: False)
    monkeypatch.setattr(engine, "DOCKERD_LOG", tmp_path / "dockerd.log")
    monkeypatch.setattr(engine.subprocess, "Popen", lambda *a, **k: None)
    with pytest.raises(LabError, match="did not start"):
        engine.ensure_engine()


def test_cli_prints_one_line_and_exits_1(monkeypatch, capsys):
    def refuse() -> str:
        raise LabError("the Docker engine did not start within 60 s: see /var/log/sshward-dockerd.log")

    monkeypatch.setattr(cli, "ensure_engine", refuse)
    assert cli.main(["engine"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("sshward-lab: error: ")


@pytest.mark.parametrize("spec", ["buster", "web=centos", "Web=bookworm", "a b=bookworm"])
def test_bad_target_names_the_fix(spec):
    with pytest.raises(LabError, match="target"):
        parse_target(spec)


@pytest.mark.parametrize(
    ("text", "mirror"),
    [
        ("Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm\n", "http://mirror.example/debian"),
        ("deb [arch=amd64] http://m.example/debian/ bookworm main\n", "http://m.example/debian"),
    ],
)
def test_mirror_comes_from_apt_sources(tmp_path, monkeypatch, text, mirror):
    monkeypatch.delenv("SSHWARD_LAB_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(text)
    assert images.configured_mirror(tmp_path) == mirror
