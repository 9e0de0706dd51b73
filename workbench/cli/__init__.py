"""The ``workbench`` command: one console script whose subcommands are plain functions.

Each subcommand is a function in ``workbench/cli/<name>.py``; its signature becomes the flags and its docstring
the ``--help`` (litgpt's approach). Command modules import the heavy stage code inside the function, so
``workbench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
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
    """Positional parameters without defaults become arguments; the rest become ``--flags``."""
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
        if param.default is inspect.Parameter.empty:
            parser.add_argument(name, nargs="+" if is_list else None, type=inner, **kwargs)
        elif param.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and is_list and name == "overrides":
            parser.add_argument(name, nargs="*", default=[], metavar="KEY=VALUE", **kwargs)
        elif hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=param.default, **kwargs)
        else:
            if param.default is not None and "default" not in help_text:
                kwargs["help"] = f"{help_text} (default: {param.default})".strip()
            parser.add_argument(
                flag, dest=name, nargs="+" if is_list else None, type=inner, default=param.default, **kwargs
            )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Headshot Workbench: intake -> train -> generate -> evaluate, tracked in MLflow.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        func = load_command(name)
        description, _ = _doc_parts(func)
        summary = description.splitlines()[0] if description else ""
        command = sub.add_parser(
            name, help=summary, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        add_function_arguments(command, func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    name = args.pop("command")
    if name is None:
        parser.print_help()
        return 2
    try:
        result = load_command(name)(**args)
    except (WorkbenchError, MissingDependencyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
