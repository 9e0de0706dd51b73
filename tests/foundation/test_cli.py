"""The ``workbench`` command: one pattern for the four stage commands, generated from their configs.

These tests replace the stage functions with a recorder where they only need to see what the command would
call, so they run in well under a second each; ``test_cli_json.py`` and the stage CLI tests run the real ones.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.cli import COMMANDS, command_parser, main, stages
from workbench.cli.options import format_default
from workbench.config import parse_overrides
from workbench.stage import STAGE_SPECS, StageResult, StageSpec, StageStopped, TqdmEvents

STAGES = list(STAGE_SPECS)
# Arguments that make each stage command valid apart from the options under test.
BASE_ARGV = {
    "intake": ["intake", "--subject", "alice", "photos/"],
    "train": ["train", "--subject", "alice"],
    "generate": ["generate", "--subject", "alice"],
    "eval": ["eval", "--suite", "skin-tone-ladder"],
}


def _words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def recorded(monkeypatch):
    """Every stage function replaced by one that records its call and returns a bare StageResult."""
    calls: list[dict] = []

    def load(spec: StageSpec):
        def run(subject, config=None, *, workspace, events=None, **inputs):
            calls.append({"stage": spec.name, "subject": subject, "config": config, "workspace": workspace,
                          "events": events, **inputs})  # fmt: skip
            return StageResult(run_id="r1", out_dir=Path("."))

        return stages.config_class(spec.name), run

    monkeypatch.setattr(StageSpec, "load", load)
    real = stages.load_stage_command  # the real commands, with a report that needs no stage fields
    monkeypatch.setattr(
        stages, "load_stage_command", lambda s: dataclasses.replace(real(s), report=lambda r, a: 0)
    )
    return calls


# -- help ------------------------------------------------------------------------------------------------------
def test_every_command_has_a_description_and_help_on_every_flag():
    for name in COMMANDS:
        parser = command_parser(name)
        assert parser.description, f"workbench {name} has no description"
        flags = {a.dest: a.help for a in parser._actions if a.dest != "help"}
        assert all(flags.values()), f"workbench {name}: flags without help: {flags}"


def test_console_script_lists_every_command():
    out = subprocess.run(
        [sys.executable, "-m", "workbench.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("stage", STAGES)
def test_stage_help_lists_every_config_option_with_its_help_and_default(stage):
    config_cls = stages.config_class(stage)
    text = _words(command_parser(stage).format_help())
    for f in dataclasses.fields(config_cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        assert f" {f.name}=" in text, f"{stage} --help does not list {f.name}"
        assert _words(f.metadata["help"]) in text, f"{stage} --help lacks the help of {f.name}"
        assert f"(default: {format_default(default)})" in text, f"{stage} --help lacks {f.name}'s default"


def test_help_shows_literal_choices_and_types():
    text = _words(command_parser("train").format_help())
    assert "optimizer={adamw,adamw8bit,prodigy} (default: adamw)" in text
    assert "snr_gamma=FLOAT|null (default: 5.0)" in text
    assert "target_modules=TEXT,... (default: to_k,to_q,to_v,to_out.0)" in text
    assert "--resume" in text and "--recipe" in text and "--json" in text and "--workspace" in text


def test_eval_takes_the_suite_as_its_recipe():
    for flag in ("--suite", "--recipe"):
        args = command_parser("eval").parse_intermixed_args([flag, "skin-tone-ladder", "n_boot=10"])
        assert args.recipe == "skin-tone-ladder" and args.subject is None and args.words == ["n_boot=10"]


# -- the config a stage command builds ---------------------------------------------------------------------------
def test_overrides_are_typed_by_the_config():
    from workbench.evaluate import EvalConfig
    from workbench.generate import GenerateConfig
    from workbench.train import TrainConfig

    train = TrainConfig().with_overrides(parse_overrides(["rank=32", "snr_gamma=null", "learning_rate=5e-5"]))
    assert (train.rank, train.snr_gamma, train.learning_rate) == (32, None, 5e-5)
    generate = GenerateConfig().with_overrides(parse_overrides(["presets=corporate,executive", "seeds=3,4"]))
    assert generate.presets == ["corporate", "executive"] and generate.seeds == [3, 4]
    ev = EvalConfig().with_overrides(parse_overrides(["thresholds={skin.delta_e2000: {max: 4}}"]))
    assert ev.thresholds == {"skin.delta_e2000": {"max": 4}}


def test_a_recipe_keeps_its_values_unless_overridden(recorded):
    from workbench.train import TrainConfig

    recipe = TrainConfig.from_yaml("tiny-demo")
    assert main(["train", "--subject", "alice", "--recipe", "tiny-demo", "rank=3", "max-train-steps=7"]) == 0
    config = recorded[-1]["config"]
    assert (config.rank, config.max_train_steps) == (3, 7)
    untouched = {k: v for k, v in recipe.to_dict().items() if k not in ("rank", "max_train_steps")}
    assert {k: config.to_dict()[k] for k in untouched} == untouched
    assert recipe.learning_rate != TrainConfig().learning_rate  # the recipe's value, not the default


def test_each_stage_gets_the_contract_call(recorded, tmp_path):
    photo = tmp_path / "a=b.jpg"  # an existing file that looks like KEY=VALUE is still a photo
    photo.write_bytes(b"")
    assert main(["intake", "--subject", "alice", "photos/", str(photo), "resolution=1024"]) == 0
    assert main(["generate", "count=2", "--subject", "alice", "presets=executive", "--json"]) == 0
    assert main(["eval", "--suite", "skin-tone-ladder", "n_boot=10"]) == 0
    assert main(["train", "--subject", "alice", "--workspace", str(tmp_path / "ws")]) == 0
    intake, generate, ev, train = recorded
    assert intake["photos"] == ["photos/", str(photo)] and intake["config"].resolution == 1024
    assert generate["subject"] == "alice" and generate["config"].count == 2
    assert isinstance(generate["events"], TqdmEvents) and generate["events"].disable  # no bars under --json
    assert ev["subject"] is None and ev["images"] is None
    assert ev["config"].suite == "skin-tone-ladder" and ev["config"].n_boot == 10
    assert train["resume"] is False and train["workspace"].root == tmp_path / "ws"
    assert not train["events"].disable


def test_ctrl_c_or_a_stop_request_exits_130(monkeypatch, capsys):
    def stopped(*args, **kwargs):
        raise StageStopped("stopped on request")

    monkeypatch.setattr(StageSpec, "load", lambda spec: (stages.config_class(spec.name), stopped))
    assert main(["train", "--subject", "alice"]) == 130
    assert "interrupted" in capsys.readouterr().err


# -- bad input: one sentence, exit status 2 ----------------------------------------------------------------------
@pytest.mark.parametrize("stage", STAGES)
def test_an_unknown_key_is_one_line_and_exit_2(stage, capsys):
    assert main([*BASE_ARGV[stage], "rnak=3"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: Unknown ") and captured.err.count("\n") == 1
    assert "'rnak'" in captured.err and f"workbench {stage} --help" in captured.err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--subject", "bad id!"], "Subject id 'bad id!' is not valid"),
        (["train", "--subject", "alice", "rank=zero"], "rank='zero' must be a whole number"),
        (["train", "--subject", "alice", "rank=null"], "rank cannot be null"),
        (["train", "--subject", "alice", "optimizer=sgd"], "is not one of adamw"),
        (["train", "--subject", "alice", "rank"], "'rank' is not KEY=VALUE"),
        (["train", "--subject", "alice", "--rank", "3"], "nrecognized arguments: --rank"),
        (["train", "rank=3"], "ollowing arguments are required: --subject"),
        (
            ["train", "--subject", "alice", "--recipe", "no-such-recipe"],
            "No training recipe 'no-such-recipe'",
        ),
        (["generate", "--subject", "alice", "count=0"], "count=0 must be between"),
        (["eval", "thresholds=5"], "thresholds must be a YAML mapping"),
        (["eval", "--suite", "nope"], "No eval suite 'nope'"),
        (["intake", "--subject", "alice"], "No photos given"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err


def test_help_does_not_import_the_stages_heavy_code():
    code = ("import sys; from workbench.cli import build_parser, command_parser; build_parser(); "
            "command_parser('train').format_help(); print(sorted(sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    for heavy in ("torch", "diffusers", "workbench.intake.pipeline", "workbench.evaluate.suite"):
        assert f"'{heavy}'" not in out


def test_no_function_in_the_cli_is_longer_than_60_lines():
    import ast

    import workbench.cli

    for path in Path(workbench.cli.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                assert length <= 60, f"{path.name}: {node.name} is {length} lines"


# Values a typo, a paste or a fuzzer produces; every one must end in a config or in one sentence, exit 2.
NASTY = ["", "nan", "-inf", "1e309", "-1", "0", "-8", "null", "abc", "1,2", "a,,b", "{a: 1}", "[", "'", "true",
         "99999999999999999999", "1.5", "{x: {min: nan}}", "%s", "é"]  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_any_value_of_any_option_is_a_config_or_one_sentence(stage, recorded, capsys):
    for f in dataclasses.fields(stages.config_class(stage)):
        for value in NASTY:
            code = main([*BASE_ARGV[stage], f"{f.name}={value}"])
            err = capsys.readouterr().err
            assert code in (0, 2), f"{f.name}={value!r}: exit {code}"
            if code == 2:
                assert err.startswith("error: ") and err.count("\n") == 1, f"{f.name}={value!r}: {err}"
