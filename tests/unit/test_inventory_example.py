"""inventory.example is what users copy: it must parse and its variables must pass the roles' specs."""

from __future__ import annotations

import json
import shutil
import subprocess

from sshward.keys import is_valid_public_key
from tests.conftest import ROOT


def test_inventory_example_parses_and_keys_are_valid(tmp_path):
    copy = tmp_path / "inventory.yml"
    shutil.copy(ROOT / "inventory.example", copy)
    out = subprocess.run(
        ["ansible-inventory", "-i", str(copy), "--host", "web1.example.org"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    host = json.loads(out.stdout)
    assert host["ssh_hardening_allow_users"] == ["deploy", "alice"]
    assert all(is_valid_public_key(k) for u in host["ssh_hardening_users"] for k in u["keys"])
