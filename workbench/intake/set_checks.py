"""Set-level findings over the accepted photos: how many, how varied, and how old.

Findings never reject a photo; they say what to add or change in the set. Each has the same shape as a
per-photo check (name, ok, score, threshold, message) so the CLI and the UI print both the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime

from workbench.intake.config import IntakeConfig


@dataclass
class Finding:
    name: str
    ok: bool
    score: float
    threshold: float | str
    message: str

    def to_dict(self) -> dict:
        return asdict(self)


def assess_set(accepted: list[dict], config: IntakeConfig) -> list[Finding]:
    """``accepted``: per-photo records with ``pose``, ``expression``, ``lighting`` and ``capture_date``."""
    n = len(accepted)
    findings = [_count(n, config)]
    if n == 0:
        return findings
    poses = Counter(p.get("pose") for p in accepted if p.get("pose"))
    findings.append(_variety(
        "pose_variety", poses, n, 2,
        "Add some three-quarter views (head turned about 30 degrees) and a profile or two: with frontal "
        "photos only, the model cannot draw you from the side.",
    ))  # fmt: skip
    findings.append(_variety(
        "lighting_variety", Counter(p.get("lighting") for p in accepted if p.get("lighting")), n, 2,
        "All photos share one kind of light: add some in daylight, indoors and with side light, so the model "
        "learns your face rather than one lighting.",
    ))  # fmt: skip
    findings.append(_variety(
        "expression_variety", Counter(p.get("expression") for p in accepted if p.get("expression")), n, 2,
        "All photos have the same expression: mix a relaxed neutral face with smiles, so the model can do both.",
    ))  # fmt: skip
    findings.append(_dates([p.get("capture_date") for p in accepted], config))
    return findings


def _count(n: int, config: IntakeConfig) -> Finding:
    lo, hi = config.min_photos, config.max_photos
    if n < lo:
        message = (
            f"{n} usable photo{'s' if n != 1 else ''}: {lo}-{hi} varied photos give the best likeness; "
            f"add {lo - n} more (different days, angles, expressions and light)."
        )
    elif n > hi:
        message = (
            f"{n} usable photos: more than {hi} adds training time without improving likeness much; "
            f"keep the {hi} most varied."
        )
    else:
        message = f"{n} usable photos: within the {lo}-{hi} sweet spot."
    return Finding("photo_count", lo <= n <= hi, n, f"{lo}-{hi}", message)


def _variety(name: str, counts: Counter, n: int, minimum: int, advice: str) -> Finding:
    kinds = len(counts)
    # One photo cannot vary; from three on, a set with a single kind is worth a sentence.
    ok = kinds >= minimum or n < 3
    spread = ", ".join(f"{count} {label.replace('_', ' ')}" for label, count in counts.most_common())
    return Finding(name, ok, kinds, minimum, f"{spread}." if ok else f"{spread}: {advice}")


def _dates(values: list, config: IntakeConfig) -> Finding:
    dates = sorted(_as_datetime(v) for v in values if v)
    if len(dates) < 2:
        return Finding(
            "capture_dates", True, 0, config.max_capture_spread_days,
            f"{len(dates)} photo(s) carry a capture date in EXIF; the spread cannot be judged.",
        )  # fmt: skip
    spread = (dates[-1] - dates[0]).days
    ok = spread <= config.max_capture_spread_days
    message = (
        f"Taken between {dates[0]:%Y-%m-%d} and {dates[-1]:%Y-%m-%d}."
        if ok else
        f"The photos span {spread / 365.25:.1f} years ({dates[0]:%Y} to {dates[-1]:%Y}): old photos pull the "
        "likeness toward how you looked then; prefer photos from the last year or two."
    )  # fmt: skip
    return Finding("capture_dates", ok, spread, config.max_capture_spread_days, message)


def _as_datetime(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
