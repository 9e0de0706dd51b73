"""Confidence intervals: percentile bootstrap for any statistic, Wilson for proportions.

Every number the suite reports comes with an interval, because 10-100 faces per run make point estimates
noisy; the interval says how much a difference between two runs or two groups can be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class Estimate:
    """A point estimate with a two-sided interval and the sample size it came from."""

    est: float
    lo: float
    hi: float
    n: int
    method: str = "bootstrap"

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


# The smallest sample each kind of interval is shown for; below it the report says "too few (n=...)" instead of
# a number (docs/evaluation.md gives the reasons). The JSON report and the flat metrics keep the number.
MIN_N: dict[str, int] = {
    # A 95% Wilson interval at n=9 is still ~0.55 wide at p=0.5: it cannot tell 0.5 from 0.8.
    "wilson": 10,
    # Below 5 values a percentile bootstrap has at most 35 distinct resamples and its interval under-covers.
    "bootstrap": 5,
}


def min_n(method: str) -> int:
    """The minimum n for an interval of ``method`` (1 for a method without one)."""
    return MIN_N.get(method, 1)


def too_few(e: Estimate) -> bool:
    """Whether ``e`` rests on fewer values than its method needs (``n == 0`` counts as too few)."""
    return e.n < min_n(e.method) or not math.isfinite(e.est)


def describe(e: Estimate, why_missing: str = "no values to measure", digits: int = 3) -> str:
    """``est [lo, hi]``, or why there is no number: ``why_missing`` at n=0, ``too few (n=...)`` below the minimum."""
    if e.n == 0 or not math.isfinite(e.est):
        return why_missing
    if too_few(e):
        return f"too few (n={e.n}; needs {min_n(e.method)})"
    return f"{e.est:.{digits}f} [{e.lo:.{digits}f}, {e.hi:.{digits}f}]"


def _nan(n: int = 0, method: str = "bootstrap") -> Estimate:
    return Estimate(float("nan"), float("nan"), float("nan"), n, method)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> Estimate:
    """Wilson score interval for a proportion (well behaved at 0/n and n/n, unlike the normal one)."""
    if n <= 0:
        return _nan(0, "wilson")
    z = float(_st.norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, "wilson")


def bootstrap_ci(
    values: np.ndarray | list[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap of ``statistic`` over ``values`` (NaNs dropped first)."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return _nan()
    est = float(statistic(x))
    if x.size == 1 or n_boot <= 0:
        return Estimate(est, est, est, int(x.size))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))
    boots = np.array([statistic(x[i]) for i in idx], dtype=float)
    return _interval(est, boots, confidence, int(x.size))


def bootstrap_paired(
    y_true: np.ndarray,
    y_score: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Bootstrap a metric of (label, score) pairs, e.g. accuracy or ROC AUC on a held-out split.

    Resamples that contain a single class are skipped (AUC is undefined there).
    """
    y_true, y_score = np.asarray(y_true), np.asarray(y_score)
    if y_true.size == 0:
        return _nan()
    est = float(metric(y_true, y_score))
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, y_true.size, size=y_true.size)
        if np.unique(y_true[i]).size < 2:
            continue
        boots.append(metric(y_true[i], y_score[i]))
    if not boots:
        return Estimate(est, est, est, int(y_true.size))
    return _interval(est, np.asarray(boots, dtype=float), confidence, int(y_true.size))


def _interval(est: float, boots: np.ndarray, confidence: float, n: int) -> Estimate:
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boots, [alpha, 1 - alpha])
    # A percentile interval can, rarely, miss a skewed point estimate; report one that contains it.
    return Estimate(est, float(min(lo, est)), float(max(hi, est)), n)
