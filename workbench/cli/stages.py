"""The four stage commands, generated from :data:`workbench.stage.STAGE_SPECS` and each stage's config.

    workbench <stage> --subject ID [--recipe FILE] [KEY=VALUE ...] [the stage's own inputs] [--json] [--workspace]

Every ``KEY=VALUE`` is a field of the stage's config dataclass, typed by it; ``--help`` lists them all with
their help and default. What differs between stages (their inputs, the base config, the summary printed) is
a small :class:`StageCommand` in ``workbench/cli/<stage>.py``; the rest is here, once.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.cli.options import is_override, options_help
from workbench.cli.output import print_json, stdout_to_stderr
from workbench.errors import WorkbenchError
from workbench.stage import STAGE_SPECS

# stage -> the module whose COMMAND describes its command (imported only when that command runs)
COMMAND_MODULES = {
    "intake": "workbench.cli.intake",
    "train": "workbench.cli.train",
    "generate": "workbench.cli.generate",
    "eval": "workbench.cli.evaluate",
}
WORKSPACE_HELP = "Workspace folder (default: $WORKBENCH_WORKSPACE, else ./workspace)."


class CommandParser(argparse.ArgumentParser):
    """Bad flags are bad input like any other: one ``error:`` line and exit status 2, not a usage block."""

    def error(self, message: str):  # type: ignore[override]
        raise WorkbenchError(f"{message[0].upper()}{message[1:]} (see `{self.prog} --help`).")


def _no_inputs(parser: argparse.ArgumentParser) -> None:
    pass


@dataclass(frozen=True)
class StageCommand:
    """What is particular to one stage's command."""

    stage: str
    description: str  # the --help text above the flags: what the command does, examples
    report: Callable[[Any, argparse.Namespace], int]  # prints the human summary; returns the exit status
    subject_help: str = "The subject's id (letters, digits, '-' and '_'), e.g. --subject alice."
    subject_required: bool = True
    recipe_flags: tuple[str, ...] = ("--recipe",)
    recipe_help: str = "A YAML recipe of the options below (a name or a path); KEY=VALUE overrides it."
    inputs: str | None = None  # metavar of positional inputs besides KEY=VALUE (intake's photos)
    words_help: str = "Config options as KEY=VALUE (listed below), in any order."
    add_arguments: Callable[[argparse.ArgumentParser], None] = _no_inputs  # the stage's own flags
    # The stage function's own keyword arguments, from the parsed args and the positional inputs.
    call_kwargs: Callable[[argparse.Namespace, list[str]], dict[str, Any]] = lambda args, inputs: {}
    # The config before KEY=VALUE overrides: (config class, args, workspace) -> config; default: the recipe.
    base_config: Callable[[type, argparse.Namespace, Any], Any] | None = None


def config_class(stage: str) -> type:
    """The stage's config class, without importing its run function (``train --help`` needs no torch)."""
    spec = STAGE_SPECS[stage]
    return getattr(importlib.import_module(spec.module), spec.config)


def load_stage_command(stage: str) -> StageCommand:
    return importlib.import_module(COMMAND_MODULES[stage]).COMMAND


def stage_summary(stage: str) -> str:
    """The first line of a stage command's description (for ``workbench --help``)."""
    return load_stage_command(stage).description.strip().splitlines()[0]


def stage_parser(stage: str, parent: Any = None) -> argparse.ArgumentParser:
    """The parser of ``workbench <stage>``: the common flags, the stage's own, and every config option."""
    command = load_stage_command(stage)
    kwargs = {"description": command.description, "epilog": options_help(config_class(stage)),
              "formatter_class": argparse.RawDescriptionHelpFormatter}  # fmt: skip
    if parent is None:
        parser = CommandParser(prog=f"workbench {stage}", **kwargs)
    else:
        parser = parent.add_parser(stage, help=stage_summary(stage), **kwargs)
    parser.add_argument("--subject", required=command.subject_required, help=command.subject_help)
    parser.add_argument(
        *command.recipe_flags,
        dest="recipe",
        metavar=command.recipe_flags[0].lstrip("-").upper(),
        help=command.recipe_help,
    )
    command.add_arguments(parser)
    parser.add_argument("--json", action="store_true",
                        help="Print the result as one JSON document on stdout (progress and logs go to stderr).")  # fmt: skip
    parser.add_argument("--workspace", help=WORKSPACE_HELP)
    metavar = f"{command.inputs} | KEY=VALUE" if command.inputs else "KEY=VALUE"
    parser.add_argument("words", nargs="*", metavar=metavar, help=command.words_help)
    return parser


def split_words(words: Sequence[str], takes_inputs: bool) -> tuple[list[str], list[str]]:
    """(inputs, KEY=VALUE overrides); an existing file named ``a=b.jpg`` counts as an input."""
    inputs, overrides = [], []
    for word in words:
        if is_override(word) and not (takes_inputs and Path(word).exists()):
            overrides.append(word)
        elif takes_inputs:
            inputs.append(word)
        else:
            raise WorkbenchError(
                f"'{word}' is not KEY=VALUE (for example rank=8); see --help for the options."
            )
    return inputs, overrides


def build_config(
    command: StageCommand, args: argparse.Namespace, workspace: Any, overrides: list[str]
) -> Any:
    """The recipe (or the stage's base config), then the user's KEY=VALUE on top."""
    config_cls = config_class(command.stage)
    if command.base_config is not None:
        base = command.base_config(config_cls, args, workspace)
    else:
        base = config_cls.from_yaml(args.recipe) if args.recipe else config_cls()
    return base.with_overrides(list(overrides))


def run_stage_command(stage: str, argv: Sequence[str]) -> int:
    """``workbench <stage> ...``: parse, build the config, run the stage with tqdm bars, print the result."""
    from workbench.stage import TqdmEvents
    from workbench.workspace import Workspace, validate_subject_id

    command = load_stage_command(stage)
    args = stage_parser(stage).parse_intermixed_args(list(argv))
    if args.subject is not None:
        validate_subject_id(args.subject)
    inputs, overrides = split_words(args.words, takes_inputs=command.inputs is not None)
    workspace = Workspace.resolve(args.workspace)
    config = build_config(command, args, workspace, overrides)
    _, run = STAGE_SPECS[stage].load()
    with stdout_to_stderr(args.json):
        result = run(args.subject, config, workspace=workspace, events=TqdmEvents(disable=args.json),
                     **command.call_kwargs(args, inputs))  # fmt: skip
    if result is None:  # a secondary process under `accelerate launch`: the main one reports
        return 0
    if args.json:
        print_json(result)
    return command.report(result, args)
