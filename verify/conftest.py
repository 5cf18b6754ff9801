"""Host verification suite: pytest + testinfra, pointed at any hosts testinfra reaches.

    pytest verify --hosts=ansible://all --connection=ansible --ansible-inventory=inventory.yml
    pytest verify --hosts=ssh://admin@web1 --sudo --policy=policy.yml
    pytest verify --hosts=docker://web1 --policy=policy.yml --sshward-report=reports/

Every check carries a stable control ID (``SSHW-...``) through the ``control`` marker; the ID shows
in ``--junitxml`` output (properties ``control``, ``title``, ``cis``,
``devsec``) and in the per-host reports (``--sshward-report=DIR`` writes ``DIR/<host>.md`` and ``DIR/<host>.html``).
``--controls SSHW-SSHD,SSHW-FW`` runs only the controls whose ID starts with one of the prefixes.
A control that does not apply to a host is skipped with the reason, never passed.
"""

from __future__ import annotations

import pytest

from sshward.effective import Effective

from .helpers import sshd_T
from .policy import host_variables
from .report import Reporter


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sshward", "sshward host verification")
    group.addoption(
        "--controls",
        default="",
        help="comma-separated control ID prefixes to run (default: all), e.g. SSHW-SSHD,SSHW-FW",
    )
    group.addoption(
        "--policy",
        default=None,
        help="YAML file of role variables (overrides the inventory's); the policy for ssh:// and docker:// hosts",
    )
    group.addoption(
        "--baseline-dir",
        default=None,
        help="directory of integrity baselines written by harden.yml (<host>.json); default: the "
        "ssh_hardening_baseline_dir variable",
    )
    group.addoption(
        "--sshward-report", default=None, metavar="DIR", help="write DIR/<host>.md and DIR/<host>.html per host"
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "control(id, title, cis=None, devsec=None): a verification control")
    report_dir = config.getoption("--sshward-report", default=None)
    if report_dir:
        config.pluginmanager.register(Reporter(report_dir), "sshward-report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    prefixes = tuple(p.strip() for p in config.getoption("--controls").split(",") if p.strip())
    selected, deselected = [], []
    for item in items:
        marker = item.get_closest_marker("control")
        if marker is None:
            selected.append(item)
            continue
        control_id, title = marker.args[:2]
        if prefixes and not control_id.startswith(prefixes):
            deselected.append(item)
            continue
        selected.append(item)
        item.user_properties.append(("control", control_id))
        item.user_properties.append(("title", title))
        for ref in ("cis", "devsec"):
            if marker.kwargs.get(ref):
                item.user_properties.append((ref, marker.kwargs[ref]))
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope="module")
def variables(host, request):
    """The host's policy variables (inventory and/or --policy file)."""
    return host_variables(host, request.config.getoption("--policy"))


@pytest.fixture(scope="module")
def effective(host) -> Effective:
    """The global effective sshd configuration."""
    return sshd_T(host)
