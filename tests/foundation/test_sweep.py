"""Sweep files: every shipped sweep loads (the first grid-only form too), and bad ones are refused with the fix."""

from pathlib import Path

import pytest

from workbench.errors import WorkbenchError
from workbench.sweep import SweepConfig, _optuna_space
from workbench.train import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
SWEEPS = sorted((ROOT / "experiments" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_every_shipped_sweep_loads_and_names_real_training_options(path):
    import optuna

    sweep = SweepConfig.from_yaml(path)
    recipe = TrainConfig.from_yaml(sweep.recipe).with_overrides(sweep.overrides)
    study = optuna.create_study()
    for _ in range(3):  # what the sampler proposes is valid for its option
        trial = study.ask(_optuna_space(sweep.params))
        recipe.replace(**trial.params)
        study.tell(trial, 0.0)


def test_the_first_grid_sweep_file_still_runs_as_a_grid():
    """experiments/sweeps/lora-rank-lr.yaml predates Optuna: `grid:` becomes params with the grid sampler."""
    sweep = SweepConfig.from_yaml(ROOT / "experiments" / "sweeps" / "lora-rank-lr.yaml")
    assert sweep.sampler == "grid" and sweep.total_trials() == 4
    assert {"rank": 8, "learning_rate": 5e-4} in sweep.cells()


def test_grid_sampler_visits_every_cell_once():
    import optuna

    from workbench.sweep import _sampler

    sweep = SweepConfig(grid={"rank": [4, 8], "learning_rate": [1e-4, 5e-4, 1e-3]})
    study = optuna.create_study(sampler=_sampler(sweep))
    seen = []
    for _ in range(sweep.total_trials()):
        trial = study.ask(_optuna_space(sweep.params))
        seen.append((trial.params["rank"], trial.params["learning_rate"]))
        try:
            study.tell(trial, 0.0)
        except RuntimeError:  # the grid sampler calls study.stop() after the last cell (outside optimize())
            pass
    assert sorted(seen) == sorted((c["rank"], c["learning_rate"]) for c in sweep.cells())


def test_the_sweep_id_ignores_how_many_trials_so_a_sweep_can_be_extended():
    a = SweepConfig(params={"rank": [4, 8]}, n_trials=4)
    assert a.sweep_id() == a.replace(n_trials=10).sweep_id() != a.replace(seed=1).sweep_id()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "needs 'params'"),
        ({"grid": {"rank": []}}, "empty list"),
        ({"params": {"rank": 4}}, "list of values or"),
        ({"params": {"learning_rate": {"low": 1e-4, "high": 1e-3}}, "sampler": "grid"}, "needs lists"),
    ],
)
def test_bad_sweeps_are_refused(kwargs, message):
    with pytest.raises(WorkbenchError, match=message):
        SweepConfig(**kwargs)
