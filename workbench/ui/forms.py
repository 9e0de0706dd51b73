"""Widgets filled from a config, and only what the user changed laid back over it.

Choosing a recipe (or a LoRA, or an eval suite) fills the tab's widgets with that config's values. When the
job starts, the config is read again and compared with the widgets: a widget that still shows what the config
put there leaves the config alone; only the values the user actually changed override it. (Applying every
widget over the recipe, as the app once did, silently trained ``sdxl-faces`` at rank 4 for 20 steps.)
"""

from __future__ import annotations

import math
import typing
from typing import Any, TypeVar

from workbench.config import StageConfig, coerce
from workbench.errors import WorkbenchError

C = TypeVar("C", bound=StageConfig)

TRAIN_FIELDS = ("model", "resolution", "max_train_steps", "rank", "learning_rate", "validation_steps", "seed")
GENERATE_FIELDS = ("model", "presets", "count", "seed", "steps", "scheduler")
EVAL_FIELDS = ("metrics",)
UNSET = "(preset or model default)"  # a dropdown's label for None ("let the presets decide")


def form_values(config: StageConfig, fields: tuple[str, ...]) -> dict[str, Any]:
    """What the widgets of ``fields`` show for ``config``.

    None ("let the model or the presets decide") shows as 0 in a number field (a browser sends an empty number
    field as 0) and as :data:`UNSET` in a choice list; both read back as None.
    """
    hints = typing.get_type_hints(type(config))
    return {name: _shown(getattr(config, name), hints[name]) for name in fields}


def _shown(value: Any, hint: Any) -> Any:
    if value is not None or not _optional(hint):
        return value
    return 0 if set(typing.get_args(hint)) & {int, float} else UNSET


def changed(config: C, values: dict[str, Any]) -> dict[str, Any]:
    """The widget values that differ from ``config``'s, typed like the config's fields."""
    hints = typing.get_type_hints(type(config))
    out = {}
    for name, raw in values.items():
        value = _typed(raw, hints[name], name)
        if not _same(value, getattr(config, name)):
            out[name] = value
    return out


def apply(config: C, values: dict[str, Any], extra: dict[str, Any] | None = None) -> C:
    """``config`` with only the changed widget values, then ``extra`` (KEY=VALUE lines), laid over it."""
    changes = {**changed(config, values), **(extra or {})}
    if not changes:
        return config
    return type(config).from_dict({**config.to_dict(), **changes})


def parse_extra(text: str | None) -> dict[str, Any]:
    """``KEY=VALUE`` lines, as ``workbench train`` takes them (blank lines and ``#`` comments are skipped)."""
    from workbench.config import parse_overrides

    lines = [line.strip() for line in (text or "").splitlines()]
    return parse_overrides([line for line in lines if line and not line.startswith("#")])


def _typed(raw: Any, hint: Any, name: str) -> Any:
    if isinstance(raw, str):
        raw = raw.strip()
    if _optional(hint) and (raw == UNSET or raw == "" or raw is None or (_number(raw) and raw == 0)):
        return None  # every None-able field of the forms is a size or a count, where 0 is not a value
    try:
        return coerce(raw, hint, name)
    except WorkbenchError as exc:
        raise WorkbenchError(f"{exc} (in the field '{name}')") from None


def _optional(hint: Any) -> bool:
    return type(None) in typing.get_args(hint)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return sorted(map(str, a)) == sorted(map(str, b))  # a checkbox group does not keep the config's order
    return a == b
