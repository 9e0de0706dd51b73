"""`workbench generate`: options as KEY=VALUE from GenerateConfig, --json output, clear errors, resume by run name."""

from __future__ import annotations

import json

from workbench.cli import command_parser, main

FAST = ["steps=2", "resolution=64"]


def test_generate_json_and_resume(workspace, subject, capsys):
    argv = ["generate", "--subject", subject, "presets=rembrandt,butterfly", "count=3", *FAST, "run_name=cli",
            "--json"]  # fmt: skip
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["generated"], out["skipped"]) == (3, 0) and out["run_id"]
    assert [i["seed"] for i in out["images"]] == [0, 1, 2]
    assert out["images"][1]["presets"] == ["butterfly"]
    assert main([*argv, "count=4"]) == 0  # the last value of a key wins
    again = json.loads(capsys.readouterr().out)
    assert (again["generated"], again["skipped"]) == (1, 3)


def test_generate_recipe_keeps_its_values_unless_overridden(workspace, subject, capsys):
    assert main(["generate", "--subject", subject, "presets=office", "count=2", *FAST, "seed=5", "run_name=r1",
                 "--json"]) == 0  # fmt: skip
    first = json.loads(capsys.readouterr().out)
    recipe = workspace.generation_dir(subject, "r1") / "generate.yaml"
    assert main(["generate", "--subject", subject, "--recipe", str(recipe), "run_name=r2", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert [i["seed"] for i in second["images"]] == [i["seed"] for i in first["images"]] == [5, 6]
    assert (
        main(["generate", "--subject", subject, "--recipe", str(recipe), "run_name=r3", "seed=9", "--json"])
        == 0
    )
    third = json.loads(capsys.readouterr().out)
    assert [i["seed"] for i in third["images"]] == [9, 10]  # count=2 still from the recipe


def test_generate_prints_a_summary(workspace, subject, capsys):
    assert main(["generate", "--subject", subject, "count=1", *FAST]) == 0
    out = capsys.readouterr().out
    assert "1 image(s) generated, 0 kept from before" in out and "contact sheet:" in out


def test_generate_errors_are_one_clear_sentence(workspace, subject, capsys):
    assert main(["generate", "--subject", subject, "presets=nope", "count=1"]) == 2
    assert "Unknown preset 'nope'" in capsys.readouterr().err
    assert main(["generate", "--subject", subject, "controls=sketch:x.png", "count=1"]) == 2
    assert "TYPE:REFERENCE" in capsys.readouterr().err
    assert main(["generate", "--subject", subject, "run_name=../x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_help_lists_the_options():
    text = command_parser("generate").format_help()
    for option in (
        "lora=",
        "presets=",
        "count=",
        "lora_scale=",
        "scheduler=",
        "controls=",
        "--json",
        "--recipe",
    ):
        assert option in text
    assert "scheduler={ddim,dpmpp-2m,dpmpp-2m-karras,euler,euler-a,unipc}|null" in text
