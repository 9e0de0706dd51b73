"""ROC AUC with a DeLong confidence interval, by the fast midrank algorithm of Sun & Xu (2014).

DeLong, DeLong & Clarke-Pearson (1988) estimate the AUC's variance from "structural components": for each
positive, the share of negatives it outranks (``V10``); for each negative, the share of positives that
outrank it (``V01``); ``var = s²(V10)/m + s²(V01)/n``. Sun & Xu (2014, IEEE Signal Processing Letters 21(11))
compute both from midranks in O(N log N): with ``Tz`` the midranks of all scores, ``Tx``/``Ty`` those within
the positives/negatives, ``V10 = (Tz - Tx)/n`` over positives and ``V01 = 1 - (Tz - Ty)/m`` over negatives.

The interval is built on the logit scale and mapped back, so it stays inside [0, 1] and is asymmetric near
the bounds, as the AUC's sampling distribution is. When the two sides are perfectly separated (AUC 0 or 1)
DeLong's variance is 0 and its interval would read ``1.00 [1.00, 1.00]``; there the score-type interval
with Hanley & McNeil's (1982) variance at ``m = n = (m + n) / 2`` (Newcombe 2006, Statistics in Medicine 25)
is used instead, labelled ``newcombe``.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy import stats as st

from workbench.errors import WorkbenchError
from workbench.evaluate.stats import Estimate


def delong_components(labels: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and DeLong's structural components ``V10`` (per positive) and ``V01`` (per negative)."""
    labels, scores = np.asarray(labels).astype(int), np.asarray(scores, dtype=float)
    pos, neg = scores[labels == 1], scores[labels == 0]
    m, n = pos.size, neg.size
    if m == 0 or n == 0:
        raise WorkbenchError("An AUC needs both real (0) and generated (1) images among the labels.")
    tz = st.rankdata(np.concatenate([pos, neg]))  # midranks: ties count half, as in the Mann-Whitney U
    tx, ty = st.rankdata(pos), st.rankdata(neg)
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v10 = (tz[:m] - tx) / n
    v01 = 1.0 - (tz[m:] - ty) / m
    return float(auc), v10, v01


def rank_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The AUC alone (Mann-Whitney, ties count half): fast enough for thousands of bootstrap resamples."""
    return delong_components(labels, scores)[0]


def delong_auc(
    labels: np.ndarray | list[int], scores: np.ndarray | list[float], confidence: float = 0.95
) -> Estimate:
    """ROC AUC (1 = generated is the positive class) with a DeLong interval (``method="delong"``), or the
    Newcombe interval (``method="newcombe"``) when the sides are perfectly separated."""
    auc, v10, v01 = delong_components(np.asarray(labels), np.asarray(scores))
    m, n = v10.size, v01.size
    z = float(st.norm.ppf(0.5 + confidence / 2))
    var = (np.var(v10, ddof=1) / m if m > 1 else 0.0) + (np.var(v01, ddof=1) / n if n > 1 else 0.0)
    if var <= 0 or auc in (0.0, 1.0):
        lo, hi = newcombe_interval(auc, m, n, confidence)
        return Estimate(auc, lo, hi, m + n, "newcombe")
    logit = np.log(auc / (1 - auc))
    half = z * np.sqrt(var) / (auc * (1 - auc))  # delta method: d logit(a) / da = 1 / (a (1 - a))
    lo, hi = 1 / (1 + np.exp(-(logit - half))), 1 / (1 + np.exp(-(logit + half)))
    return Estimate(auc, float(lo), float(hi), m + n, "delong")


def newcombe_interval(auc: float, m: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The score-type AUC interval: the thetas with ``(auc - theta)^2 <= z^2 V(theta)``, where ``V`` is
    Hanley & McNeil's variance (exponential-model Q1, Q2) with both sample sizes set to
    ``N = (m + n) / 2``."""
    z2 = float(st.norm.ppf(0.5 + confidence / 2)) ** 2
    big_n = (m + n) / 2

    def excess(theta: float) -> float:
        var = theta * (1 - theta) / (m * n) * (2 * big_n - 1 - 3 * (big_n - 1) / ((2 - theta) * (1 + theta)))
        return (auc - theta) ** 2 - z2 * var

    eps = 1e-12
    lo = 0.0 if auc <= eps else optimize.brentq(excess, 0.0, min(auc, 1 - eps))
    hi = 1.0 if auc >= 1 - eps else optimize.brentq(excess, max(auc, eps), 1.0)
    return float(lo), float(hi)
