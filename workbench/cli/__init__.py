"""The ``workbench`` command: one console script, two kinds of subcommands.

* The stage commands (``intake``, ``train``, ``generate``, ``eval``) share one pattern generated from each stage's
  config dataclass (:mod:`workbench.cli.stages`): ``workbench <stage> --subject ID [--recipe FILE] [KEY=VALUE
  ...]``, with every option, its help and default in ``--help``.
* The others (``demo``, ``forget``, ``runs``, ``sweep``, ``ui``) are plain functions in ``workbench/cli/<name>.py``; the
  signature becomes the flags and the docstring the ``--help`` (litgpt's approach).

Heavy stage code is imported only when a command runs, so ``workbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args, get_origin

from workbench.cli.stages import CommandParser, run_stage_command, stage_parser, stage_summary
from workbench.errors import MissingDependencyError, WorkbenchError
from workbench.stage import STAGE_SPECS

# The order is the order of `workbench --help`; stage commands are the names in STAGE_SPECS.
COMMANDS: tuple[str, ...] = (
    "demo",
    "quick",
    "intake",
    "forget",
    "train",
    "generate",
    "eval",
    "compare",
    "runs",
    "sweep",
    "study",
    "ui",
)
FUNCTIONS: dict[str, str] = {  # function command -> "module:function"
    "demo": "workbench.cli.demo:demo",
    "quick": "workbench.cli.quick:quick",
    "compare": "workbench.cli.quick:compare",
    "forget": "workbench.cli.intake:forget",
    "runs": "workbench.cli.runs:runs",
    "sweep": "workbench.cli.sweep:sweep",
    "study": "workbench.cli.study:study",
    "ui": "workbench.cli.ui:ui",
}


def load_command(name: str) -> Callable[..., Any]:
    module, function = FUNCTIONS[name].split(":")
    return getattr(importlib.import_module(module), function)


def _doc_parts(func: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """The docstring's text before ``Args:`` and a help line for each argument listed under it."""
    doc = inspect.getdoc(func) or ""
    head, _, args_block = doc.partition("\nArgs:\n")
    helps: dict[str, str] = {}
    current = None
    for line in args_block.splitlines():
        match = re.match(r"^\s{2,4}(\w+):\s*(.*)$", line)
        if match:
            current = match.group(1)
            helps[current] = match.group(2).strip()
        elif current and line.strip():
            helps[current] += " " + line.strip()
    return head.strip(), helps


def _unwrap_optional(hint: Any) -> Any:
    if get_origin(hint) in (typing.Union, types.UnionType):
        non_none = [a for a in get_args(hint) if a is not type(None)]
        if len(non_none) == 1:
            return non_none[0]
    return hint


def add_function_arguments(parser: argparse.ArgumentParser, func: Callable[..., Any]) -> None:
    """Map a signature to arguments.

    - positional parameters without a default -> positional arguments (``list[...]`` takes one or more);
    - positional-only parameters with a default -> optional positional arguments;
    - keyword-only parameters without a default -> required ``--flags`` (``--subject ID``);
    - everything else -> ``--flags`` (``bool`` -> ``--x/--no-x``).
    """
    _, helps = _doc_parts(func)
    hints = typing.get_type_hints(func)
    for name, param in inspect.signature(func).parameters.items():
        hint = _unwrap_optional(hints.get(name, str))
        help_text = helps.get(name, "")
        flag = "--" + name.replace("_", "-")
        kwargs: dict[str, Any] = {"help": help_text}
        is_list = get_origin(hint) in (list, tuple)
        inner = get_args(hint)[0] if is_list and get_args(hint) else hint
        if get_origin(inner) is Literal:
            kwargs["choices"] = list(get_args(inner))
            inner = type(get_args(inner)[0])
        required = param.default is inspect.Parameter.empty
        if param.kind is inspect.Parameter.KEYWORD_ONLY and required:
            parser.add_argument(
                flag, dest=name, nargs="+" if is_list else None, type=inner, required=True, **kwargs
            )
        elif required:
            parser.add_argument(name, nargs="+" if is_list else None, type=inner, **kwargs)
        elif param.kind is inspect.Parameter.POSITIONAL_ONLY:
            parser.add_argument(
                name, nargs="*" if is_list else "?", type=inner, default=param.default, **kwargs
            )
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=param.default, **kwargs)
        else:
            if param.default is not None and "default" not in help_text:
                kwargs["help"] = f"{help_text} (default: {param.default})".strip()
            parser.add_argument(
                flag, dest=name, nargs="+" if is_list else None, type=inner, default=param.default, **kwargs
            )


def command_parser(name: str, parent: Any = None) -> argparse.ArgumentParser:
    """The full parser of one command (a stage command's lists every option of its config)."""
    if name in STAGE_SPECS:
        return stage_parser(name, parent)
    func = load_command(name)
    description, _ = _doc_parts(func)
    kwargs = {"description": description, "formatter_class": argparse.RawDescriptionHelpFormatter}
    if parent is None:
        parser = CommandParser(prog=f"workbench {name}", **kwargs)
    else:
        parser = parent.add_parser(name, help=description.splitlines()[0] if description else "", **kwargs)
    add_function_arguments(parser, func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """``workbench --help``: the commands and one line each (a command's own ``--help`` has the rest)."""
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Headshot Workbench: intake -> train -> generate -> evaluate, tracked in MLflow.",
        epilog="`workbench COMMAND --help` lists a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        if name in STAGE_SPECS:  # without its options: they import the stage's config module
            sub.add_parser(name, help=stage_summary(name))
        else:
            command_parser(name, sub)
    return parser


def _quiet_libraries() -> None:
    """Keep the terminal for our own progress bars and messages, not per-weight loading bars and notices."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; bad input prints one ``error:`` line and exits 2, Ctrl-C exits 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    if not argv or argv[0] not in COMMANDS:
        if argv and not argv[0].startswith("-"):  # a mistyped command: one line, like every other bad input
            close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            choices = ", ".join(COMMANDS)
            print(f"error: '{argv[0]}' is not a command{hint}: choose from {choices}.", file=sys.stderr)
            return 2
        build_parser().parse_args(argv or ["--help"])  # prints help (or argparse's own error for a bad flag)
        return 2
    name, rest = argv[0], argv[1:]
    try:
        if name in STAGE_SPECS:
            return run_stage_command(name, rest)
        return _run_function_command(name, rest)
    except (WorkbenchError, MissingDependencyError) as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C, or a stage stopped on request (its run ends KILLED)
        print("interrupted", file=sys.stderr)
        return 130


def one_line(message: str) -> str:
    """An error stays one line on stderr even when it quotes input that holds a newline ('alice\\n')."""
    return message.strip().replace("\r", "\\r").replace("\n", "\\n")


def _run_function_command(name: str, argv: list[str]) -> int:
    # Intermixed parsing lets positionals sit anywhere among the flags; argparse cannot do that through
    # subparsers, so the subcommand gets its own parser.
    args = vars(command_parser(name).parse_intermixed_args(argv))
    func = load_command(name)
    positional = [
        args.pop(p.name) for p in inspect.signature(func).parameters.values() if p.kind is p.POSITIONAL_ONLY
    ]
    return int(func(*positional, **args) or 0)


if __name__ == "__main__":
    sys.exit(main())
