"""Small-n honesty: a minimum n per kind of estimate, "too few" instead of a number below it, reasons instead
of nan, numerically sorted groups, plots that fit the app, and no detectability figure from a handful of images."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from workbench.evaluate import EvalConfig, run_eval
from workbench.evaluate.detect import MIN_PER_SIDE
from workbench.evaluate.groups import GROUP_METRICS, group_table, natural_key
from workbench.evaluate.report import _group_panel, plot_groups, to_markdown
from workbench.evaluate.stats import Estimate, bootstrap_ci, describe, too_few, wilson_interval
from workbench.evaluate.suite import EvalResult, Item, _run_detector, flat_metrics, run_checks
from workbench.ui.handlers import evaluate as E


# -- the minimum n of each kind of estimate --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("estimate", "n_min"),
    [(lambda n: wilson_interval(n // 2, n), 10), (lambda n: bootstrap_ci(np.arange(n, dtype=float)), 5)],
    ids=["wilson", "bootstrap"],
)
def test_too_few_below_the_minimum_and_a_number_at_it(estimate, n_min):
    below, at = estimate(n_min - 1), estimate(n_min)
    assert too_few(below) and describe(below) == f"too few (n={n_min - 1}; needs {n_min})"
    assert not too_few(at) and describe(at).startswith(f"{at.est:.3f} [")


def test_no_values_give_the_reason_not_nan():
    empty = bootstrap_ci([float("nan")] * 3)
    assert empty.n == 0 and describe(empty, "no face found in any image") == "no face found in any image"


# -- groups: numeric order, too-few flags, plots ----------------------------------------------------------------
def _ten_groups(n_per_group: int = 6, small: str = "3", n_small: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for mst in range(1, 11):
        for _ in range(n_small if str(mst) == small else n_per_group):
            rows.append({"mst": mst, "mst_band": "MST 1-3" if mst <= 3 else "MST 4-6" if mst <= 6 else "MST 7-10",
                         **{s.column: float(rng.integers(0, 2)) if s.better == "higher" or s.column == "lighter"
                            else float(rng.normal(3, 1)) for s in GROUP_METRICS}})  # fmt: skip
    return pd.DataFrame(rows)


def test_groups_sort_numerically_and_flag_small_groups():
    assert sorted(["10", "2", "1"], key=natural_key) == ["1", "2", "10"]
    groups = group_table(_ten_groups(), ["mst", "mst_band"], n_boot=50)
    verified = groups["mst"]["verified"]["groups"]
    assert list(verified) == [str(i) for i in range(1, 11)]
    assert list(groups["mst_band"]["verified"]["groups"]) == ["MST 1-3", "MST 4-6", "MST 7-10"]
    # 6 per group: below Wilson's 10 for a rate, at bootstrap's 5 for a mean; the group of 2 is too few for both.
    assert verified["1"] == {**verified["1"], "method": "wilson", "too_few": True}
    distance = groups["mst"]["median_distance"]["groups"]
    assert (
        distance["1"]["method"] == "bootstrap" and not distance["1"]["too_few"] and distance["3"]["too_few"]
    )


def test_report_tables_say_too_few_and_sort_numerically(tmp_path):
    groups = group_table(_ten_groups(), ["mst"], n_boot=50)
    result = EvalResult(run_id="r", out_dir=tmp_path, config=EvalConfig(metrics=["skin"], group_by=["mst"]),
                        summary={"n_images": 56, "n_references": 2}, metrics={}, table=pd.DataFrame(),
                        groups=groups)  # fmt: skip
    md = to_markdown(result, None, {})
    section = md[md.index("**skin colour shift") :].splitlines()  # heading, blank, header, rule, rows
    rows = [line.split("|")[1].strip() for line in section[4:14]]
    assert rows == [str(i) for i in range(1, 11)]
    assert "| 3 | 2 | too few (n=2; needs 5) | — | bootstrap |" in md
    assert "| 1 | 6 | too few (n=6; needs 10) | — | wilson |" in md  # a rate from 6 images: no number
    # Every rate group has 6 < 10 images: no worst group or gap is claimed from them.
    assert (
        "**verification rate** (higher is better) — no worst group or gap: fewer than two groups have n ≥ 10"
        in md
    )
    assert "nan" not in md.lower()


def test_group_plot_fits_the_app_and_small_groups_get_no_bar(tmp_path):
    groups = group_table(_ten_groups(n_per_group=12), ["mst"], n_boot=50)
    files = plot_groups(groups, tmp_path)
    with Image.open(files["groups_mst"]) as png:
        width, height = png.size
    assert width <= 1200 and height < 2 * width  # 8 panels wrapped in 3 rows of 3, not a 2816 px strip
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    _group_panel(ax, groups["mst"]["delta_e2000"])
    assert len(ax.patches) == 9  # 10 groups, one of them (n=2) too few: a label in its slot, not a bar
    assert any("too few" in t.get_text() for t in ax.texts)
    plt.close(fig)


# -- detectability --------------------------------------------------------------------------------------------
def _detector_items(n_real: int, n_generated: int) -> tuple[list[Item], dict]:
    """Held-out "photos" (smooth noise) vs "generated" copies that carry a 2x nearest-neighbour up-sampling trace."""
    from workbench.evaluate.detect import detector_input

    rng = np.random.default_rng(0)
    items = [Item(f"r{i}", None, meta={"subject_id": f"s{i % 4}"}, role="holdout") for i in range(n_real)]
    items += [Item(f"a{i}", None, meta={"subject_id": f"s{i % 4}"}) for i in range(n_generated)]
    inputs = {}
    for it in items:
        if it.holdout:
            image = (rng.normal(128, 20, (128, 128, 3))).clip(0, 255).astype(np.uint8)
        else:
            image = (
                np.repeat(np.repeat(rng.normal(128, 20, (64, 64, 3)), 2, 0), 2, 1)
                .clip(0, 255)
                .astype(np.uint8)
            )
        inputs[it.id] = detector_input(it.id, image, None, size=128, source=it.meta["subject_id"])
    return items, inputs


def test_demo_sized_detectability_says_too_few_and_reports_no_number():
    items, inputs = _detector_items(1, 6)  # the demo subject: 1 held-out photo vs 6 generated images
    summary = {
        "n_images": 6,
        "n_references": 6,
        "detect": _run_detector(items, inputs, EvalConfig(n_boot=50)),
    }
    detect = summary["detect"]
    assert detect["too_few"].startswith("too few images for a detectability estimate (1 real, 6 generated")
    metrics = flat_metrics(summary, {})
    assert "detect.auc" not in metrics and "detect.accuracy" not in metrics  # absent, not NaN
    check = run_checks(metrics, {"detect.auc": {"max": 0.9}}, {"detect": detect["too_few"]})[0]
    assert not check.passed and check.value is None and "too few images" in check.reason
    md_summary = {**summary, "detect": detect}
    md = to_markdown(EvalResult(run_id="r", out_dir=None, config=EvalConfig(metrics=["detect"], group_by=[]),
                                summary=md_summary, metrics=metrics, table=pd.DataFrame(), groups={}), None, {})  # fmt: skip
    assert "Too few images for a detectability estimate" in md and "1.00" not in md


def test_detectability_at_the_minimum_reports_an_auc_with_a_delong_ci():
    items, inputs = _detector_items(MIN_PER_SIDE, MIN_PER_SIDE)
    detect = _run_detector(items, inputs, EvalConfig(n_boot=100, detector_permutations=20))
    assert isinstance(detect["auc"], Estimate) and detect["auc"].method in ("delong", "newcombe")
    assert detect["auc"].lo <= detect["auc"].est <= detect["auc"].hi and detect["n_real"] == MIN_PER_SIDE
    assert detect["auc"].lo > 0.5  # the up-sampling trace is there to be found
    metrics = flat_metrics({"n_images": 1, "n_references": 1, "detect": detect}, {})
    assert "detect.auc" in metrics and "detect.p_value" in metrics
    assert "too_few" in _run_detector(*_detector_items(MIN_PER_SIDE - 1, 40), EvalConfig(n_boot=10))


# -- the whole run: reasons instead of nan -----------------------------------------------------------------------
def test_a_run_without_faces_gives_reasons_not_nan(workspace, subject_with_photos, tmp_path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((128, 128, 3), 60 * i + 40, np.uint8)).save(outputs / f"{i}.png")
    config = EvalConfig(
        metrics=["likeness", "skin", "detect"], n_boot=20, thresholds={"detect.auc": {"max": 0.9}}
    )
    result = run_eval(subject_with_photos, config, workspace=workspace, images=outputs)
    assert result.summary["likeness"]["why_missing"] == "no face found in any image"
    md = result.files.markdown.read_text()
    html = result.files.html.read_text()
    for text in (md, html):
        assert "nan" not in text.lower() and "n/a" not in text
    assert "| centroid_distance | no face found in any image | 0 | bootstrap |" in md
    assert "| face_found_rate | too few (n=3; needs 10) | 3 | wilson |" in md
    assert "Too few images for a detectability estimate (0 real, 3 generated" in md
    assert "held-out photos, never the training photos" in md
    assert not result.passed and "too few images" in result.checks[0].reason
    headline = E.headline(result.summary, result.metrics)
    assert "nan" not in headline.lower() and "no face found in any image" in headline
    assert "Detector: too few images for a detectability estimate" in headline


def test_app_group_rows_show_too_few_and_n():
    groups = {"mst": {"verified": {"label": "verification rate", "worst_group": "2", "groups": {
        "1": {"est": 1.0, "lo": 0.7, "hi": 1.0, "n": 12, "method": "wilson", "too_few": False},
        "2": {"est": 0.0, "lo": 0.0, "hi": 0.6, "n": 3, "method": "wilson", "too_few": True}}}}}  # fmt: skip
    rows = E.group_rows(groups).to_dict("records")
    assert rows[0]["estimate"] == "1" and rows[0]["n"] == 12 and rows[0]["method"] == "wilson"
    assert rows[1]["estimate"] == "too few (n=3)" and rows[1]["95% CI"] == "—"
