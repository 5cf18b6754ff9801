"""The armed-revert state machine both revert modules go through (sshward.revert.apply_state)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sshward import revert


@pytest.fixture(autouse=True)
def no_host_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    # confirm() stops the systemd timer by name; this machine's systemd is not the lab's.
    monkeypatch.setattr(revert, "_stop_timer", lambda unit: None)


def write_plan(state_dir: Path, name: str, files: list[dict[str, str]], commands: list[list[str]]) -> Path:
    state_dir.mkdir(exist_ok=True)
    path = state_dir / f"{name}.json"
    path.write_text(json.dumps(revert.plan_document(name, 60, files, commands, "test")))
    return path


def test_query_without_plan(tmp_path: Path) -> None:
    assert revert.apply_state("query", "x", state_dir=str(tmp_path)) == {"changed": False, "armed": False, "plan": None}


def test_query_reports_the_armed_plan(tmp_path: Path) -> None:
    write_plan(tmp_path, "x", [], [["true"]])
    result = revert.apply_state("query", "x", state_dir=str(tmp_path))
    assert (result["changed"], result["armed"], result["plan"]["commands"]) == (False, True, [["true"]])


def test_arm_in_check_mode_writes_nothing(tmp_path: Path) -> None:
    prepared = []
    result = revert.apply_state(
        "armed",
        "x",
        seconds=30,
        commands=[["true"]],
        state_dir=str(tmp_path / "s"),
        check_mode=True,
        prepare=lambda: prepared.append(1),
    )
    assert (result["changed"], result["armed"], prepared, (tmp_path / "s").exists()) == (True, True, [], False)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"seconds": 5, "commands": [["true"]]}, "seconds: an armed revert needs at least 10 s"),
        ({"seconds": 30, "commands": ["systemctl reload ssh"]}, "commands: each command is a non-empty list"),
        ({"seconds": 30, "files": [{"path": "rel", "backup": "/b"}]}, "files: each entry needs absolute"),
    ],
)
def test_arm_refuses_bad_plans(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(revert.RevertError, match=message):
        revert.apply_state("armed", "x", state_dir=str(tmp_path), check_mode=True, **kwargs)


def test_unknown_state(tmp_path: Path) -> None:
    with pytest.raises(revert.RevertError, match="state: 'armd'"):
        revert.apply_state("armd", "x", state_dir=str(tmp_path))


@pytest.mark.parametrize("state", ["confirmed", "fired"])
def test_nothing_armed_is_no_change(tmp_path: Path, state: str) -> None:
    assert revert.apply_state(state, "x", state_dir=str(tmp_path))["changed"] is False


@pytest.mark.parametrize("state", ["confirmed", "fired"])
def test_check_mode_leaves_the_plan(tmp_path: Path, state: str) -> None:
    path = write_plan(tmp_path, "x", [], [["false"]])
    result = revert.apply_state(state, "x", state_dir=str(tmp_path), check_mode=True)
    assert (result["changed"], path.exists()) == (True, True)


def test_confirm_cancels_and_keeps_the_change(tmp_path: Path) -> None:
    target = tmp_path / "changed.conf"
    target.write_text("new\n")
    backup = tmp_path / "backup.conf"
    backup.write_text("old\n")
    path = write_plan(tmp_path, "x", [{"path": str(target), "backup": str(backup)}], [])
    result = revert.apply_state("confirmed", "x", state_dir=str(tmp_path))
    assert (result["changed"], result["armed"], path.exists(), target.read_text()) == (True, False, False, "new\n")


def test_fire_restores_and_runs_the_commands(tmp_path: Path) -> None:
    target = tmp_path / "changed.conf"
    target.write_text("new\n")
    backup = tmp_path / "backup.conf"
    backup.write_text("old\n")
    marker = tmp_path / "ran"
    write_plan(tmp_path, "x", [{"path": str(target), "backup": str(backup)}], [["touch", str(marker)]])
    result = revert.apply_state("fired", "x", state_dir=str(tmp_path))
    assert (result["changed"], target.read_text(), marker.exists()) == (True, "old\n", True)
    assert (tmp_path / "x.fired.json").exists()


def test_fire_with_a_failing_step_raises(tmp_path: Path) -> None:
    write_plan(tmp_path, "x", [], [["false"]])
    with pytest.raises(revert.RevertError, match="some steps failed"):
        revert.apply_state("fired", "x", state_dir=str(tmp_path))


def test_arm_runs_prepare_before_the_timer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    monkeypatch.setattr(revert, "arm", lambda *a, **k: order.append("arm") or {"name": a[0]})
    result = revert.apply_state(
        "armed", "x", seconds=30, commands=[["true"]], state_dir=str(tmp_path), prepare=lambda: order.append("prepare")
    )
    assert (order, result["plan"], os.listdir(tmp_path)) == (["prepare", "arm"], {"name": "x"}, [])
