"""Pure parts of library/sshward_authlog.py: durations, the hosts.deny managed block, fail2ban output."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def mod():
    pytest.importorskip("ansible.module_utils.basic")
    import ansible.module_utils as amu

    # ansible.module_utils.sshward -> the project's core (as ANSIBLE_MODULE_UTILS does)
    if str(ROOT / "module_utils") not in amu.__path__:
        amu.__path__.append(str(ROOT / "module_utils"))
    spec = importlib.util.spec_from_file_location("sshward_authlog_mod", ROOT / "library" / "sshward_authlog.py")
    m = importlib.util.module_from_spec(spec)
    sys.modules["sshward_authlog_mod"] = m
    spec.loader.exec_module(m)
    return m


@pytest.mark.parametrize(
    ("text", "secs"),
    [("0", 0), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("1w", 604800), ("90", 90), ("1y", None), ("-1d", None)],
)
def test_parse_window(mod, text, secs):
    assert mod.parse_window(text) == secs


def test_hosts_deny_block_round_trip(mod):
    text = "# site rules\nALL: 10.9.9.9\n"
    before, addrs, after = mod.managed_block(text)
    assert addrs == []
    new = mod.render_hosts_deny(before, ["203.0.113.5", "2001:db8::5"], after)
    assert new == (
        "# site rules\nALL: 10.9.9.9\n" + mod.BEGIN + "\nsshd: 203.0.113.5\nsshd: [2001:db8::5]\n" + mod.END + "\n"
    )
    before2, addrs2, after2 = mod.managed_block(new)
    assert addrs2 == ["203.0.113.5", "2001:db8::5"]
    assert mod.render_hosts_deny(before2, [], after2) == text


def test_hosts_deny_block_keeps_lines_after(mod):
    text = f"a\n{mod.BEGIN}\nsshd: 203.0.113.5\n{mod.END}\nb\n"
    before, addrs, after = mod.managed_block(text)
    assert (before, addrs, after) == (["a"], ["203.0.113.5"], ["b"])


@pytest.mark.parametrize(
    ("out", "want"),
    [("['203.0.113.5', '203.0.113.45']", ["203.0.113.5", "203.0.113.45"]), ("[]", []), ("['x; rm -rf /']", [])],
)
def test_parse_banned(mod, out, want):
    assert mod._parse_banned(out) == want
