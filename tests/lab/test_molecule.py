"""Every molecule scenario, run whole (create, converge, idempotence, verify, destroy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, run

SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, tmp_path: Path) -> None:
    run(["molecule", "test", "-s", scenario], timeout=1800)
