"""Host verification suite: pytest + testinfra, pointed at any hosts testinfra reaches.

Every check carries a stable control ID (``SSHW-...``) through the ``control`` marker;
the ID shows in the test id, in ``--junitxml`` output (as a property) and in failures.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "control(id, title, cis=None, devsec=None): a verification control")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        marker = item.get_closest_marker("control")
        if marker is None:
            continue
        control_id, title = marker.args[:2]
        item.user_properties.append(("control", control_id))
        item.user_properties.append(("title", title))
        for ref in ("cis", "devsec"):
            if marker.kwargs.get(ref):
                item.user_properties.append((ref, marker.kwargs[ref]))
