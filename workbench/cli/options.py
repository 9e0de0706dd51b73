"""A stage config on the command line: ``KEY=VALUE`` overrides typed by the config, and their ``--help``.

Every option of a stage command is a field of its config dataclass (:class:`workbench.config.StageConfig`),
so the command line, recipes, the app and MLflow's params all use the same names, types, defaults and help.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import textwrap
import typing
from typing import Any, Literal, get_args, get_origin

import yaml

from workbench.config import StageConfig, allows_none, without_none

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*=")


def is_override(item: str) -> bool:
    """Whether a command-line word is ``KEY=VALUE`` (``rank=8``) rather than a path or another input."""
    return bool(_KEY.match(item))


# -- --help ----------------------------------------------------------------------------------------------------
_LABELS = {int: "INT", float: "FLOAT", str: "TEXT", bool: "true|false"}


def type_label(hint: Any) -> str:
    """How ``--help`` writes a field's type: ``INT``, ``{adamw,prodigy}``, ``TEXT,...``, ``FLOAT|null``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return "{" + ",".join(map(str, args)) + "}"
    if allows_none(hint):
        inner = without_none(hint)
        return ("|".join(type_label(a) for a in args if a is not type(None)) if inner is hint
                else type_label(inner)) + "|null"  # fmt: skip
    if origin in (list, tuple):
        return f"{type_label(args[0]) if args else 'TEXT'},..."
    if origin is dict:
        return "YAML-MAPPING"
    return _LABELS.get(hint, getattr(hint, "__name__", str(hint)).upper())


def format_default(value: Any) -> str:
    """A default as the user would type it after ``KEY=``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value)) or "(empty)"
    if isinstance(value, dict):
        return yaml.safe_dump(value, default_flow_style=True).strip() if value else "{}"
    return str(value) if value != "" else '""'


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def options_help(cls: type[StageConfig], *, width: int | None = None) -> str:
    """The ``KEY=VALUE options`` section of a stage's ``--help``: every field, its type, default and help."""
    hints = typing.get_type_hints(cls)
    width = width or min(100, shutil.get_terminal_size().columns - 2)  # argparse wraps to the same width
    title = (f"config options (KEY=VALUE, the fields of {cls.__name__}, with the config's defaults; `null` "
             "clears an optional one; a recipe's values hold unless given here):")  # fmt: skip
    lines = textwrap.wrap(title, width)
    for f in dataclasses.fields(cls):
        lines.append(f"  {f.name}={type_label(hints[f.name])}  (default: {format_default(_default(f))})")
        help_text = f.metadata.get("help", "")
        lines += textwrap.wrap(help_text, width, initial_indent=" " * 6, subsequent_indent=" " * 6,
                               break_on_hyphens=False, break_long_words=False)  # fmt: skip
    return "\n".join(lines)
