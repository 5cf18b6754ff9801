"""Host verification suite: pytest + testinfra, pointed at any hosts testinfra reaches.

Every check carries a stable control ID (``SSHW-...``) through the ``control`` marker;
the ID shows in the test id, in ``--junitxml`` output (as a property) and in failures.
``--controls SSHW-SSHD,SSHW-FW`` runs only the controls whose ID starts with one of the prefixes.
"""

from __future__ import annotations

import pytest

from .policy import host_variables


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--controls",
        default="",
        help="comma-separated control ID prefixes to run (default: all), e.g. SSHW-SSHD,SSHW-FW",
    )
    parser.addoption("--policy", default=None, help="YAML file of role variables (overrides the inventory's)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "control(id, title, cis=None, devsec=None): a verification control")


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
