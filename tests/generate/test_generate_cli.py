"""`workbench generate`: flags from the function signature, --json output, clear errors, resume by run name."""

from __future__ import annotations

import json

from workbench.cli import build_parser, main


def test_generate_json_and_resume(workspace, subject, capsys):
    argv = ["generate", "--subject", subject, "--preset", "rembrandt", "butterfly", "--count", "3", "--steps", "2",
            "--resolution", "64", "--run-name", "cli", "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["generated"], out["skipped"]) == (3, 0) and out["mlflow_run_id"]
    assert [i["seed"] for i in out["images"]] == [0, 1, 2]
    assert out["images"][1]["presets"] == ["butterfly"]
    assert main([*argv[:-3], "--count", "4", "--run-name", "cli", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["generated"], again["skipped"]) == (1, 3)


def test_generate_recipe_keeps_its_values_unless_a_flag_is_given(workspace, subject, capsys):
    assert main(["generate", "--subject", subject, "--preset", "office", "--count", "2", "--steps", "2", "--resolution", "64",
                 "--seed", "5", "--run-name", "r1", "--json"]) == 0  # fmt: skip
    first = json.loads(capsys.readouterr().out)
    recipe = workspace.generation_dir(subject, "r1") / "generate.yaml"
    assert (
        main(["generate", "--subject", subject, "--recipe", str(recipe), "--run-name", "r2", "--json"]) == 0
    )
    second = json.loads(capsys.readouterr().out)
    assert [i["seed"] for i in second["images"]] == [i["seed"] for i in first["images"]] == [5, 6]


def test_generate_errors_are_one_clear_sentence(workspace, subject, capsys):
    assert main(["generate", "--subject", subject, "--preset", "nope", "--count", "1"]) == 2
    assert "Unknown preset 'nope'" in capsys.readouterr().err
    assert main(["generate", "--subject", subject, "--control", "sketch:x.png", "--count", "1"]) == 2
    assert "TYPE:REFERENCE" in capsys.readouterr().err


def test_help_lists_the_options():
    text = build_parser()._subparsers._group_actions[0].choices["generate"].format_help()
    for flag in ("--lora", "--preset", "--count", "--lora-scale", "--scheduler", "--control", "--json"):
        assert flag in text
