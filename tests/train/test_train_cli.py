"""``workbench train`` and ``python -m workbench.train``: thin front ends over train_lora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workbench.cli import main
from workbench.train.__main__ import main as module_main

FAST = [
    "validation_inference_steps=2",
    "validation_prompts=a photo of {instance}",
    "rank=4",
    "checkpointing_steps=0",
]


def test_cli_trains_with_a_recipe_and_overrides(subject, capsys):
    recipe = Path(__file__).resolve().parents[2] / "experiments" / "train" / "tiny-demo.yaml"
    assert (
        main(["train", "--subject", subject, "--recipe", str(recipe), "max_train_steps=3", *FAST, "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == 3 and result["model_version"] == "1"


def test_module_entry_point_takes_overrides_anywhere(subject, capsys):
    assert (
        module_main(
            ["--subject", subject, "--model", "tiny", "max_train_steps=2", *FAST, "register_model=false"]
        )
        == 0
    )
    assert "trained 2 steps" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["train", "--subject", "nobody"], ["train", "--subject", "x", "rank=zero"]])
def test_cli_errors_are_one_clear_line(subject, capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
