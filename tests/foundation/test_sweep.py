"""Sweep files: every shipped sweep loads, and bad grids are refused with the fix."""

from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.sweep import SweepConfig
from workbench.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_shipped_sweep_loads_and_names_real_training_options(path):
    sweep = SweepConfig.from_yaml(path)
    recipe = TrainConfig.from_yaml(ROOT / sweep.recipe)
    for cell in sweep.cells():
        recipe.replace(**cell)  # every value is valid for its option


def test_cells_are_the_cartesian_product():
    sweep = SweepConfig(grid={"rank": [4, 8], "learning_rate": [1e-4, 5e-4, 1e-3]})
    cells = sweep.cells()
    assert len(cells) == 6 and {"rank": 8, "learning_rate": 1e-3} in cells


@pytest.mark.parametrize(
    "grid, message", [({}, "needs a 'grid'"), ({"rank": []}, "non-empty lists; fix: rank")]
)
def test_bad_grids_are_refused(grid, message):
    with pytest.raises(WorkbenchError, match=message):
        SweepConfig(grid=grid)
