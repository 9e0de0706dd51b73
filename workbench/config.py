"""Typed stage configs: one dataclass per stage, logged flat to MLflow and as YAML that re-runs the stage.

Follows peft's pattern: every field has a type, a default and a one-line ``help`` in its metadata; fixed
choices are ``Literal``; validation lives in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from workbench.errors import WorkbenchError

T = TypeVar("T", bound="StageConfig")


def field(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING):
    """A dataclass field with a one-line help text (shown by ``--help`` and in the docs)."""
    kwargs: dict[str, Any] = {"metadata": {"help": help}}
    if default_factory is not dataclasses.MISSING:
        kwargs["default_factory"] = default_factory
    else:
        kwargs["default"] = default
    return dataclasses.field(**kwargs)


@dataclasses.dataclass
class StageConfig:
    """Base class of every stage's config."""

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def to_flat(self, prefix: str = "") -> dict[str, Any]:
        """Nested fields as ``a.b`` keys, lists as comma-joined strings: the shape MLflow params want."""
        return flatten(self.to_dict(), prefix)

    def to_yaml(self) -> str:
        return yaml.safe_dump({"stage": self.stage_name(), **self.to_dict()}, sort_keys=False)

    def save_yaml(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_yaml())
        return path

    @classmethod
    def stage_name(cls) -> str:
        return cls.__name__.removesuffix("Config").lower()

    @classmethod
    def from_dict(cls: type[T], data: dict[str, Any]) -> T:
        data = {k: v for k, v in data.items() if k != "stage"}
        known = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise WorkbenchError(
                f"Unknown {cls.stage_name()} option(s): {', '.join(unknown)}. "
                f"Valid options are: {', '.join(sorted(known))}."
            )
        hints = typing.get_type_hints(cls)
        return cls(**{k: coerce(v, hints[k], k) for k, v in data.items()})

    @classmethod
    def from_yaml(cls: type[T], path: str | Path) -> T:
        path = project_file(path)
        if not path.is_file():
            raise WorkbenchError(
                f"Recipe file {path} does not exist: check the path (recipes live in experiments/)."
            )
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise WorkbenchError(f"Recipe {path} must be a YAML mapping of option: value.")
        stage = data.get("stage")
        if stage is not None and stage != cls.stage_name():
            raise WorkbenchError(f"Recipe {path} is for stage '{stage}', not '{cls.stage_name()}'.")
        return cls.from_dict(data)

    def replace(self: T, **overrides: Any) -> T:
        """A copy with ``overrides`` applied (validated like the constructor); ``None`` values are ignored."""
        merged = {**self.to_dict(), **{k: v for k, v in overrides.items() if v is not None}}
        return type(self).from_dict(merged)

    @classmethod
    def help_for(cls, name: str) -> str:
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f.metadata.get("help", "")
        raise KeyError(name)


PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_file(path: str | Path) -> Path:
    """``path`` as given when it exists, else relative to the project checkout.

    Recipes name each other by their repo path (``experiments/train/tiny-demo.yaml``), so they keep working
    when the workbench runs from another folder (a notebook, the app, a test's temporary directory).
    """
    path = Path(path).expanduser()
    if path.exists() or path.is_absolute():
        return path
    return PROJECT_ROOT / path


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            flat[name] = ",".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def _plain(value: Any) -> Any:
    """Paths and tuples become YAML-friendly strings and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def coerce(value: Any, hint: Any, name: str) -> Any:
    """Turn a YAML or command-line value into the field's declared type, or say why it cannot."""
    origin = get_origin(hint)
    args = get_args(hint)
    if value is None:
        return None
    if origin is Literal:
        if value not in args:
            raise WorkbenchError(f"Option {name}={value!r} is not one of {', '.join(map(str, args))}.")
        return value
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for candidate in non_none:
            try:
                return coerce(value, candidate, name)
            except WorkbenchError as exc:
                errors.append(str(exc))
        raise WorkbenchError(errors[0] if errors else f"Option {name}={value!r} has the wrong type.")
    if origin in (list, tuple):
        items = value.split(",") if isinstance(value, str) else list(value)
        items = [i for i in items if i != ""] if isinstance(value, str) else items
        inner = args[0] if args else str
        return [coerce(v, inner, name) for v in items]
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise WorkbenchError(f"Option {name}={value!r} must be true or false.")
    if hint in (int, float):
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise WorkbenchError(f"Option {name}={value!r} must be a {hint.__name__}.") from None
        if hint is int and isinstance(value, float) and value != int(value):
            raise WorkbenchError(f"Option {name}={value!r} must be a whole number.")
        return number
    if hint is str:
        return str(value)
    if hint is Path:
        return Path(value)
    return value
