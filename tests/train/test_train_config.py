"""TrainConfig: every recipe loads, overrides are typed, bad values are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.errors import MissingDependencyError, WorkbenchError
from workbench.train import TrainConfig, optim, parse_overrides

RECIPES = sorted((Path(__file__).resolve().parents[2] / "experiments" / "train").glob("*.yaml"))


def test_there_are_recipes():
    names = {p.stem for p in RECIPES}
    assert {"sd15-faces", "sdxl-faces", "sdxl-fast", "tiny-demo"} <= names


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads(recipe: Path):
    config = TrainConfig.from_yaml(recipe)
    assert config.max_train_steps >= 1
    # The logged YAML re-creates the same config.
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_overrides_are_typed():
    parsed = parse_overrides(["rank=8", "learning_rate=1e-4", "target_modules=to_q,to_v", "snr_gamma=3"])
    config = TrainConfig().with_overrides(parsed)
    assert config.rank == 8 and config.learning_rate == 1e-4 and config.target_modules == ["to_q", "to_v"]
    assert config.snr_gamma == 3.0


@pytest.mark.parametrize(
    "bad", ["rank=0", "resolution=65", "optimizer=sgd", "lora_dropout=1.5", "snr_gamma=-1", "nonsense=1"]
)
def test_bad_values_say_why(bad: str):
    with pytest.raises(WorkbenchError):
        TrainConfig().with_overrides([bad])


def test_override_without_equals_is_refused():
    with pytest.raises(WorkbenchError, match="KEY=VALUE"):
        parse_overrides(["rank"])


def test_missing_optimizer_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(optim, "available", lambda module: False)
    with pytest.raises(MissingDependencyError, match="train-extras"):
        optim.make_optimizer(TrainConfig(optimizer="prodigy"), [{"params": []}])


def test_null_clears_an_optional_field():
    assert TrainConfig().with_overrides(["snr_gamma=null"]).snr_gamma is None
