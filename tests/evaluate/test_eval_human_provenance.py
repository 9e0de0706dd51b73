"""Blind-test scoring (accuracy, Wilson CI, d') and provenance-mark survival."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.evaluate.human import dprime_yes_no, read_answers, score_answers
from workbench.evaluate.stats import wilson_interval
from workbench.generate.provenance import DIGITAL_SOURCE_TYPE, read_provenance, save_png


def test_wilson_interval_known_values():
    e = wilson_interval(0, 10)
    assert e.lo == 0.0 and e.hi == pytest.approx(0.2775, abs=1e-3)
    e = wilson_interval(8, 10)
    assert (e.lo, e.hi) == (pytest.approx(0.4902, abs=1e-3), pytest.approx(0.9433, abs=1e-3))


def test_blind_test_csv_and_jsonl(tmp_path):
    csv_path = tmp_path / "answers.csv"
    rows = ["participant,item,truth,answer"]
    rows += [f"p1,i{i},{'ai' if i % 2 else 'real'},{'ai' if i % 2 else 'real'}" for i in range(10)]  # perfect
    rows += [f"p2,i{i},{'ai' if i % 2 else 'real'},real" for i in range(10)]  # always "real"
    csv_path.write_text("\n".join(rows) + "\n")
    result = score_answers(read_answers(csv_path))
    single = result["single"]
    assert single["accuracy"].est == 0.75 and single["accuracy"].n == 20
    assert single["accuracy"].lo <= 0.75 <= single["accuracy"].hi
    p1, p2 = single["by_participant"]["p1"], single["by_participant"]["p2"]
    assert np.isfinite(p1["dprime"]) and p1["dprime"] > 2  # perfect rates corrected, not infinite
    assert p2["dprime"] == pytest.approx(0.0)  # no sensitivity: hits = false alarms = 0
    jsonl = tmp_path / "answers.jsonl"
    jsonl.write_text("".join(json.dumps({"participant": "p", "item": f"pair{i}", "truth": "left",
                                         "answer": "left" if i < 7 else "right", "mode": "2afc"}) + "\n"
                             for i in range(10)))  # fmt: skip
    forced = score_answers(read_answers(jsonl))["2afc"]
    assert forced["accuracy"].est == 0.7 and forced["dprime"] > 0


def test_dprime_correction_and_bad_files(tmp_path):
    assert dprime_yes_no(10, 10, 0, 10) == pytest.approx(2 * 1.6906, abs=1e-3)  # z(10.5/11) - z(0.5/11)
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    with pytest.raises(WorkbenchError, match="lacks column"):
        read_answers(bad)


def test_provenance_mark_is_read_and_lost_on_reencoding(tmp_path):
    image = Image.fromarray(np.full((32, 32, 3), 100, np.uint8))
    save_png(image, tmp_path / "marked.png", {"seed": 3, "prompt": "a photo", "negative_prompt": ""})
    found = read_provenance(tmp_path / "marked.png")
    assert found["ai_generated"] and found["parameters"]["seed"] == 3
    assert found["digital_source_type"] == DIGITAL_SOURCE_TYPE
    Image.open(tmp_path / "marked.png").convert("RGB").save(tmp_path / "shared.jpg", quality=85)
    lost = read_provenance(tmp_path / "shared.jpg")
    assert not lost["ai_generated"] and lost["parameters"] is None and lost["xmp"] is None
