"""``workbench train`` and ``python -m workbench.train``: the stage command pattern over run_train."""

from __future__ import annotations

import json

import mlflow
import pytest

from workbench.cli import main
from workbench.train import TrainConfig
from workbench.train.__main__ import main as module_main

FAST = [
    "validation_inference_steps=2",
    "validation_prompts=a photo of {instance}",
    "checkpointing_steps=0",
]


def test_cli_trains_with_a_recipe_and_overrides(subject, capsys):
    argv = [
        "train",
        "--subject",
        subject,
        "--recipe",
        "tiny-demo",
        "max_train_steps=3",
        "rank=4",
        *FAST,
        "--json",
    ]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 3 and result["model_version"] == "1" and result["run_id"]


def test_recipe_values_hold_unless_overridden(subject, capsys):
    """The recipe's rank, learning rate, resolution, ... reach the run, except the one value the user gives."""
    recipe = TrainConfig.from_yaml("tiny-demo")
    argv = ["train", "--subject", subject, "--recipe", "tiny-demo", "rank=3", "max_train_steps=2", *FAST,
            "with_prior_preservation=false", "register_model=false", "--json"]  # fmt: skip
    assert main(argv) == 0
    params = mlflow.MlflowClient().get_run(json.loads(capsys.readouterr().out)["run_id"]).data.params
    assert params["rank"] == "3" and params["max_train_steps"] == "2"
    assert float(params["learning_rate"]) == recipe.learning_rate != TrainConfig().learning_rate
    assert params["resolution"] == str(recipe.resolution) and params["model"] == recipe.model
    assert float(params["face_loss_weight"]) == recipe.face_loss_weight
    assert params["validation_steps"] == str(recipe.validation_steps)


def test_module_entry_point_takes_overrides_anywhere(subject, capsys):
    assert module_main(["max_train_steps=2", "--subject", subject, "model=tiny", "rank=4", *FAST,
                        "register_model=false"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "trained 2 steps" in out and "MLflow run" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--subject", "nobody"], "nobody"),
        (["train", "--subject", "x", "rank=zero"], "rank='zero'"),
        (["train", "--subject", "x", "--resume", "--recipe", "tiny-demo"], "drop --recipe"),
    ],
)
def test_cli_errors_are_one_clear_line(subject, capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
