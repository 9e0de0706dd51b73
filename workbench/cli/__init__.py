"""The ``workbench`` command: one console script whose subcommands are plain functions.

Each subcommand is a function in ``workbench/cli/<name>.py``; its signature becomes the flags and its docstring
the ``--help`` (litgpt's approach). Command modules import the heavy stage code inside the function, so
``workbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any, Literal, get_args, get_origin

from workbench.errors import MissingDependencyError, WorkbenchError

# subcommand -> "module:function"; the order is the order of `workbench --help`.
COMMANDS: dict[str, str] = {
    "demo": "workbench.cli.demo:demo",
    "intake": "workbench.cli.intake:intake",
    "forget": "workbench.cli.intake:forget",
    "train": "workbench.cli.train:train",
    "generate": "workbench.cli.generate:generate",
    "eval": "workbench.cli.evaluate:evaluate",
    "sweep": "workbench.cli.sweep:sweep",
    "ui": "workbench.cli.ui:ui",
}


def load_command(name: str) -> Callable[..., Any]:
    module, function = COMMANDS[name].split(":")
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
    - ``overrides: list[str]`` -> any number of ``KEY=VALUE`` arguments;
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
        elif is_list and name == "overrides":
            parser.add_argument(name, nargs="*", default=[], metavar="KEY=VALUE", **kwargs)
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=param.default, **kwargs)
        else:
            if param.default is not None and "default" not in help_text:
                kwargs["help"] = f"{help_text} (default: {param.default})".strip()
            parser.add_argument(
                flag, dest=name, nargs="+" if is_list else None, type=inner, default=param.default, **kwargs
            )


def command_parser(name: str, parent: Any = None) -> argparse.ArgumentParser:
    func = load_command(name)
    description, _ = _doc_parts(func)
    kwargs = {"description": description, "formatter_class": argparse.RawDescriptionHelpFormatter}
    if parent is None:
        parser = argparse.ArgumentParser(prog=f"workbench {name}", **kwargs)
    else:
        parser = parent.add_parser(name, help=description.splitlines()[0] if description else "", **kwargs)
    add_function_arguments(parser, func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Headshot Workbench: intake -> train -> generate -> evaluate, tracked in MLflow.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
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
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_libraries()
    if not argv or argv[0] not in COMMANDS:
        build_parser().parse_args(argv or ["--help"])  # prints help, or the "invalid choice" error
        return 2
    name = argv[0]
    # Intermixed parsing lets KEY=VALUE overrides and photos sit anywhere among the flags; argparse cannot
    # do that through subparsers, so the subcommand gets its own parser.
    args = vars(command_parser(name).parse_intermixed_args(argv[1:]))
    func = load_command(name)
    positional = [
        args.pop(p.name) for p in inspect.signature(func).parameters.values() if p.kind is p.POSITIONAL_ONLY
    ]
    try:
        result = func(*positional, **args)
    except (WorkbenchError, MissingDependencyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
