"""Every molecule scenario, run whole (create, converge, idempotence, verify, destroy).

One class per scenario, so that pytest-xdist's ``--dist loadscope`` (what ./dev test uses) can run
scenarios side by side while every other lab module keeps its tests, and its lab, in one worker.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from tests.conftest import ROOT, run

SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def _scenario_test(scenario: str) -> Callable[..., None]:
    def test_molecule_scenario(self: object, tmp_path: Path) -> None:
        run(["molecule", "test", "-s", scenario], timeout=1800)

    return test_molecule_scenario


for _scenario in SCENARIOS:
    _name = "TestScenario" + "".join(part.title() for part in re.split(r"[^A-Za-z0-9]+", _scenario))
    globals()[_name] = type(_name, (), {"test_molecule_scenario": _scenario_test(_scenario)})
