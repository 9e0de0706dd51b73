from dataclasses import dataclass
from typing import Literal

import pytest

from workbench.config import StageConfig, field
from workbench.errors import WorkbenchError


@dataclass
class ToyConfig(StageConfig):
    subject_id: str = field("s1", help="who")
    steps: int = field(10, help="how many")
    lr: float = field(1e-4, help="learning rate")
    mode: Literal["a", "b"] = field("a", help="a choice")
    tags: list[str] = field(default_factory=lambda: ["x", "y"], help="a list")
    flag: bool = field(False, help="a switch")


def test_yaml_round_trip_reproduces_the_config(tmp_path):
    config = ToyConfig(steps=5, mode="b", tags=["p"], flag=True)
    path = config.save_yaml(tmp_path / "toy.yaml")
    assert ToyConfig.from_yaml(path) == config


def test_flat_params_join_lists():
    assert ToyConfig().to_flat() == {
        "subject_id": "s1", "steps": 10, "lr": 1e-4, "mode": "a", "tags": "x,y", "flag": False
    }  # fmt: skip


def test_command_line_strings_are_coerced_to_field_types():
    config = ToyConfig().replace(steps="7", lr="3e-4", flag="true", tags="a,b")
    assert (config.steps, config.lr, config.flag, config.tags) == (7, 3e-4, True, ["a", "b"])


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"steps": "many"}, "must be a whole number"),
        ({"mode": "c"}, "not one of a, b"),
        ({"nope": 1}, "Unknown toy option"),
    ],
)
def test_bad_values_say_what_is_wrong(overrides, message):
    with pytest.raises(WorkbenchError, match=message):
        ToyConfig().replace(**overrides)


def test_recipe_for_another_stage_is_refused(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("stage: train\nsteps: 3\n")
    with pytest.raises(WorkbenchError, match="for stage 'train'"):
        ToyConfig.from_yaml(path)


def test_help_text_is_attached_to_every_field():
    assert ToyConfig.help_for("lr") == "learning rate"


def test_repo_paths_of_recipes_work_from_any_folder(tmp_path, monkeypatch):
    from workbench.train import TrainConfig

    monkeypatch.chdir(tmp_path)  # not the checkout
    assert TrainConfig.from_yaml("experiments/train/tiny-demo.yaml").model == "tiny"
