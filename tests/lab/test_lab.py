"""The lab itself: targets come up over real SSH, `up` is idempotent, `down` leaves nothing."""

from __future__ import annotations

import pytest

from tests.conftest import run

LAB = "pytest-lab"


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory):
    state = tmp_path_factory.mktemp("lab")
    yield state
    run(["sshward-lab", "--dir", str(state), "--lab", LAB, "down"], check=False)


def lab(lab_dir, *args):
    return run(["sshward-lab", "--dir", str(lab_dir), "--lab", LAB, *args])


def container_ids() -> set[str]:
    return set(run(["docker", "ps", "-aq", "--filter", f"label=sshward.lab={LAB}"]).stdout.split())


def test_up_then_ansible_ping_over_ssh(lab_dir):
    lab(lab_dir, "up", "web=bookworm")
    result = run(["ansible", "-i", str(lab_dir / "inventory.ini"), "all", "-m", "ansible.builtin.ping"])
    assert '"ping": "pong"' in result.stdout


def test_inventory_uses_real_ssh_not_docker_exec(lab_dir):
    inventory = (lab_dir / "inventory.ini").read_text()
    assert "ansible_connection" not in inventory
    assert "StrictHostKeyChecking=yes" in inventory


def test_second_up_reuses_running_containers(lab_dir):
    before = container_ids()
    lab(lab_dir, "up", "web=bookworm")
    assert container_ids() == before


def test_pyinfra_inventory_reaches_the_target(lab_dir):
    result = run(["pyinfra", "-y", str(lab_dir / "inventory.py"), "exec", "--", "id", "-un"])
    assert "root" in result.stdout + result.stderr


def test_down_leaves_no_container_network_or_volume(lab_dir):
    volumes_before = set(run(["docker", "volume", "ls", "-q"]).stdout.split())
    lab(lab_dir, "down")
    assert container_ids() == set()
    assert run(["docker", "network", "ls", "-q", "--filter", f"label=sshward.lab={LAB}"]).stdout.split() == []
    assert set(run(["docker", "volume", "ls", "-q"]).stdout.split()) <= volumes_before
