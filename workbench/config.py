"""Typed stage configs: one dataclass per stage, logged flat to MLflow and as YAML that re-runs the stage.

Follows peft's pattern: every field has a type, a default and a one-line ``help`` in its metadata; fixed
choices are ``Literal``; validation lives in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import os
import sys
import types
import typing
from collections.abc import Mapping, Sequence
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
    """Base class of every stage's config.

    Constructing one types every field first (``TrainConfig(rank="8")`` gets 8; ``rank="x"``,
    ``learning_rate=nan`` or a list for a number are refused with one sentence), then runs the subclass's own
    ``__post_init__``, which checks ranges (:func:`check_ranges`) knowing every value has its declared type.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Typing runs before every subclass's own checks, whether or not it calls super(): a range check on a
        # value of the wrong type would raise a TypeError, the traceback this base class exists to prevent.
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_typed_first", False):

            @functools.wraps(own)
            def __post_init__(self: StageConfig) -> None:
                self._type_fields()
                own(self)

            __post_init__._typed_first = True  # type: ignore[attr-defined]
            cls.__post_init__ = __post_init__  # type: ignore[method-assign]

    def __post_init__(self) -> None:
        self._type_fields()

    def _type_fields(self) -> None:
        hints = _hints(type(self))
        for f in dataclasses.fields(self):
            setattr(self, f.name, coerce(getattr(self, f.name), hints[f.name], f.name, strict=True))

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
        """A YAML file, or a recipe name for stages with a recipe folder (``--recipe sdxl-fast``)."""
        from workbench import resources

        path = resources.find(resources.STAGE_KINDS.get(cls.stage_name()), path)
        data = load_yaml(path) or {}
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

    def with_overrides(self: T, overrides: Sequence[str] | Mapping[str, Any]) -> T:
        """A copy with ``KEY=VALUE`` strings (or a mapping) typed by the fields and applied; every other value
        (a recipe's) is kept. Unlike :meth:`replace`, ``null`` clears a field, where the field allows it."""
        changes = dict(overrides) if isinstance(overrides, Mapping) else parse_overrides(overrides)
        cls = type(self)
        names = [f.name for f in dataclasses.fields(cls)]
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for key, raw in changes.items():
            if key not in names:
                raise WorkbenchError(_unknown_key(cls, key, names))
            values[key] = _override_value(key, raw, hints[key])
        return cls.from_dict({**self.to_dict(), **values})

    @classmethod
    def help_for(cls, name: str) -> str:
        for f in dataclasses.fields(cls):
            if f.name == name:
                return f.metadata.get("help", "")
        raise KeyError(name)


NULLS = ("null", "none", "~")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def load_yaml(path: Path) -> Any:
    """A YAML file's data; a syntax error becomes one sentence naming the file and line, not a traceback."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkbenchError(
            f"Recipe {path} cannot be read ({type(exc).__name__}): pass a YAML text file."
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise WorkbenchError(
            f"Recipe {path}{where} is not valid YAML ({problem}): fix that line (option: value per line)."
        ) from None


def check_ranges(config: Any, **ranges: tuple[float | None, float | None]) -> None:
    """``check_ranges(self, rank=(1, 1024), lora_alpha=(1, None))``: each named field (unless None) must lie in
    [low, high]; a bound of None is open. Refused with one sentence naming the option and its range."""
    for name, (low, high) in ranges.items():
        value = getattr(config, name)
        if value is None:
            continue
        if (low is not None and value < low) or (high is not None and value > high):
            if low is not None and high is not None:
                rule = f"between {_num(low)} and {_num(high)}"
            else:
                rule = f"at least {_num(low)}" if low is not None else f"at most {_num(high)}"
            raise WorkbenchError(f"Option {name}={value!r} must be {rule}.")


def _num(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def check_positive(config: Any, *names: str) -> None:
    """Each named field (unless None) must be greater than 0 (learning rates, epsilons)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and not value > 0:
            raise WorkbenchError(f"Option {name}={value!r} must be greater than 0.")


def check_template(name: str, template: str | None, **fields: str) -> None:
    """A ``str.format`` template may use only ``fields`` (``{token}``, ``{instance}``...)."""
    if template is None:
        return
    try:
        template.format(**fields)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        allowed = ", ".join("{" + f + "}" for f in fields) or "no placeholders"
        raise WorkbenchError(
            f"Option {name}={template!r} is not a valid template ({type(exc).__name__}: {exc}): it may use "
            f"{allowed}; write a literal brace as {{{{ or }}}}."
        ) from None


SEED_RANGE = (0, 2**32 - 1)  # what numpy, torch and every UI accept alike


def machine_memory_gb() -> tuple[float, str]:
    """(GB, 'the GPU' or 'this machine's RAM') where a stage would run; (0, '') when it cannot be told.

    CUDA is asked only when torch is already imported (the stages import it), so configs stay cheap to build.
    """
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / 2**30, "the GPU"
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, "this machine's RAM"
    except (ValueError, OSError, AttributeError):
        return 0.0, ""


def parse_overrides(items: Sequence[str]) -> dict[str, str | None]:
    """``["rank=8", "snr_gamma=null"]`` -> ``{"rank": "8", "snr_gamma": None}``; the config types the rest."""
    parsed: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise WorkbenchError(f"'{item}' is not KEY=VALUE (for example rank=8 or max_train_steps=500).")
        value = value.strip()
        parsed[key.strip().replace("-", "_")] = None if value.lower() in NULLS else value
    return parsed


def _unknown_key(cls: type[StageConfig], key: str, names: list[str]) -> str:
    stage = cls.stage_name()
    close = difflib.get_close_matches(key, names, n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return f"Unknown {stage} option '{key}'{hint}: `workbench {stage} --help` lists every option."


def _override_value(key: str, raw: Any, hint: Any) -> Any:
    """``null`` only where the field allows it; a mapping (eval thresholds) may be given as inline YAML."""
    if raw is None:
        if not allows_none(hint):
            raise WorkbenchError(f"Option {key} cannot be null: give it a value (see --help for its type).")
        return None
    if get_origin(without_none(hint)) is dict and isinstance(raw, str):
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = None
        if not isinstance(value, dict):
            raise WorkbenchError(f"Option {key} must be a YAML mapping, e.g. {key}='{{name: {{min: 0.5}}}}'.")
        return value
    return raw


def allows_none(hint: Any) -> bool:
    return get_origin(hint) in (typing.Union, types.UnionType) and type(None) in get_args(hint)


def without_none(hint: Any) -> Any:
    if allows_none(hint):
        rest = [a for a in get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else hint
    return hint


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


def coerce(value: Any, hint: Any, name: str, *, strict: bool = False) -> Any:
    """Turn a YAML or command-line value into the field's declared type, or say why it cannot.

    ``strict`` (a config's own construction) also refuses None for a field that does not allow it.
    """
    origin = get_origin(hint)
    args = get_args(hint)
    if value is None:
        if strict and not allows_none(hint) and hint is not Any:
            raise WorkbenchError(f"Option {name} cannot be null: give it a value (see --help for its type).")
        return None
    if origin is Literal:
        if isinstance(value, (list, dict, set)) or value not in args:
            raise WorkbenchError(f"Option {name}={value!r} is not one of {', '.join(map(str, args))}.")
        return value
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        errors = []
        for candidate in non_none:
            try:
                return coerce(value, candidate, name, strict=strict)
            except WorkbenchError as exc:
                errors.append(str(exc))
        raise WorkbenchError(errors[0] if errors else f"Option {name}={value!r} has the wrong type.")
    if origin in (list, tuple):
        if not isinstance(value, (str, list, tuple)):
            raise WorkbenchError(
                f"Option {name}={value!r} must be a list (comma-separated on the command line)."
            )
        items = value.split(",") if isinstance(value, str) else list(value)
        items = [i for i in items if i != ""] if isinstance(value, str) else items
        inner = args[0] if args else str
        return [coerce(v, inner, name, strict=strict) for v in items]
    if origin is dict:
        if not isinstance(value, Mapping):
            raise WorkbenchError(f"Option {name}={value!r} must be a mapping (YAML {{key: value}}).")
        key_hint, value_hint = args if len(args) == 2 else (str, Any)
        return {coerce(k, key_hint, name, strict=strict): coerce(v, value_hint, name, strict=strict)
                for k, v in value.items()}  # fmt: skip
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise WorkbenchError(f"Option {name}={value!r} must be true or false.")
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise WorkbenchError(f"Option {name}={value!r} must be a number, not {type(value).__name__}.")
        try:
            number = hint(value)
        except (TypeError, ValueError, OverflowError):
            kind = "a whole number" if hint is int else "a number"
            raise WorkbenchError(f"Option {name}={value!r} must be {kind}.") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise WorkbenchError(f"Option {name}={value!r} must be a finite number.")
        if hint is int and isinstance(value, float) and value != int(value):
            raise WorkbenchError(f"Option {name}={value!r} must be a whole number.")
        return number
    if hint is str:
        if isinstance(value, (list, dict, set, tuple)):
            raise WorkbenchError(f"Option {name}={value!r} must be text, not a {type(value).__name__}.")
        return str(value)
    if hint is Path:
        return Path(value)
    return value
