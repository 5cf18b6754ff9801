"""The record of an sshd reload still owed by an interrupted run."""

from __future__ import annotations

import json
import os

import pytest

from sshward import pending_reload


def test_round_trip_is_root_only(tmp_path):
    path = str(tmp_path / "sub" / "pending.json")
    backups = [{"path": "/etc/ssh/sshd_config", "backup": "/etc/ssh/sshd_config.1.bak~"}]
    pending_reload.record(["/etc/ssh/sshd_config"], backups, path=path)
    assert pending_reload.read(path) == {"changed_files": ["/etc/ssh/sshd_config"], "backups": backups}
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_no_record_means_nothing_owed(tmp_path):
    assert pending_reload.read(str(tmp_path / "absent.json")) is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        json.dumps({"changed_files": "etc"}),
        json.dumps({"changed_files": ["relative/path"]}),
        json.dumps({"backups": [{"path": "/etc/ssh/sshd_config", "backup": "../../tmp/evil"}]}),
        json.dumps({"backups": ["/etc/ssh/sshd_config"]}),
        json.dumps({"backups": {"path": "/x"}}),
    ],
)
def test_a_damaged_record_still_owes_a_reload_but_restores_nothing(tmp_path, text):
    with pytest.raises(pending_reload.PendingReloadError):
        pending_reload.parse(text)
    path = tmp_path / "pending.json"
    path.write_text(text)
    assert pending_reload.read(str(path)) == {"changed_files": [], "backups": []}


def test_a_symlinked_record_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere.json"
    target.write_text(pending_reload.render(["/etc/ssh/sshd_config"], []))
    link = tmp_path / "pending.json"
    link.symlink_to(target)
    with pytest.raises(pending_reload.PendingReloadError, match="cannot read it safely"):
        pending_reload.read(str(link))


def test_an_interrupted_runs_backups_win_for_the_same_file():
    owed = {"changed_files": ["/etc/ssh/sshd_config"], "backups": [{"path": "/etc/ssh/sshd_config", "backup": "/a~"}]}
    mine = [
        {"path": "/etc/ssh/sshd_config", "backup": "/b~"},
        {"path": "/etc/ssh/sshd_config.d/x.conf", "backup": "/c~"},
    ]
    assert pending_reload.restore_first(owed, mine) == [
        {"path": "/etc/ssh/sshd_config", "backup": "/a~"},
        {"path": "/etc/ssh/sshd_config.d/x.conf", "backup": "/c~"},
    ]
    assert pending_reload.restore_first(None, mine) == mine
