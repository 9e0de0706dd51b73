"""Scoring a human blind test ("real or AI?") from an answers file.

The file is CSV or JSONL with one answer per row:

* ``participant``, ``item``: who answered what;
* ``truth`` and ``answer``: ``real`` or ``ai`` for a single-image trial;
* ``mode`` (optional): ``single`` (default) or ``2afc``. In a two-alternative forced-choice trial two images
  are shown, one real and one AI; ``truth`` and ``answer`` then name the AI image's position (``left`` /
  ``right``, or ``a`` / ``b``).

Single-image trials give accuracy (Wilson CI) and the sensitivity d' = z(hit rate) - z(false-alarm rate),
with "AI" as the signal and the log-linear correction (Hautus 1995: (k + 0.5) / (n + 1)) so rates of 0 or 1
stay finite. 2AFC trials give accuracy and d' = sqrt(2) * z(proportion correct) (Macmillan & Creelman).
Accuracy near 0.5 means people cannot tell the images apart.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm

from workbench.errors import WorkbenchError
from workbench.evaluate.stats import wilson_interval

_ALIASES = {"real": "real", "human": "real", "photo": "real", "0": "real",
            "ai": "ai", "fake": "ai", "generated": "ai", "synthetic": "ai", "1": "ai"}  # fmt: skip


def read_answers(path: str | Path) -> list[dict[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise WorkbenchError(f"Answers file {path} does not exist: export it from the blind test first.")
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with path.open(newline="") as f:
            rows = list(csv.DictReader(f))
    missing = {"participant", "item", "truth", "answer"} - set(rows[0] if rows else {})
    if missing:
        raise WorkbenchError(
            f"Answers file {path} lacks column(s) {', '.join(sorted(missing))}: each row needs participant, "
            "item, truth, answer (and optionally mode: single or 2afc)."
        )
    return [{k: str(v).strip().lower() for k, v in row.items() if v is not None} for row in rows]


def dprime_yes_no(hits: int, n_signal: int, false_alarms: int, n_noise: int) -> float:
    h = (hits + 0.5) / (n_signal + 1)
    f = (false_alarms + 0.5) / (n_noise + 1)
    return float(norm.ppf(h) - norm.ppf(f))


def dprime_2afc(correct: int, n: int) -> float:
    pc = (correct + 0.5) / (n + 1)
    return float(np.sqrt(2) * norm.ppf(pc))


def score_answers(rows: list[dict[str, str]], confidence: float = 0.95) -> dict[str, Any]:
    """Accuracy with a Wilson CI and d' for single-image and 2AFC trials, overall and per participant."""
    single = [r for r in rows if r.get("mode", "single") in ("", "single")]
    forced = [r for r in rows if r.get("mode") == "2afc"]
    result: dict[str, Any] = {"n_answers": len(rows), "n_participants": len({r["participant"] for r in rows})}
    if single:
        result["single"] = _score_single(single, confidence)
        result["single"]["by_participant"] = {
            p: _score_single([r for r in single if r["participant"] == p], confidence)
            for p in sorted({r["participant"] for r in single})
        }
    if forced:
        correct = sum(r["truth"] == r["answer"] for r in forced)
        result["2afc"] = {
            "accuracy": wilson_interval(correct, len(forced), confidence),
            "dprime": dprime_2afc(correct, len(forced)),
        }
    return result


def _score_single(rows: list[dict[str, str]], confidence: float) -> dict[str, Any]:
    truth = [_label(r["truth"]) for r in rows]
    answer = [_label(r["answer"]) for r in rows]
    correct = sum(t == a for t, a in zip(truth, answer, strict=True))
    n_ai = sum(t == "ai" for t in truth)
    hits = sum(t == "ai" and a == "ai" for t, a in zip(truth, answer, strict=True))
    false_alarms = sum(t == "real" and a == "ai" for t, a in zip(truth, answer, strict=True))
    return {
        "accuracy": wilson_interval(correct, len(rows), confidence),
        "hit_rate": hits / n_ai if n_ai else float("nan"),
        "false_alarm_rate": false_alarms / (len(rows) - n_ai) if len(rows) > n_ai else float("nan"),
        "dprime": dprime_yes_no(hits, n_ai, false_alarms, len(rows) - n_ai),
    }


def _label(value: str) -> str:
    if value not in _ALIASES:
        raise WorkbenchError(f"Blind-test answer {value!r} is neither 'real' nor 'ai'.")
    return _ALIASES[value]
