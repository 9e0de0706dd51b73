"""The whole suite on the counterfactual skin-tone ladder, through the CLI: per-group report, plots, MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.evaluate import EvalConfig, load_suite
from workbench.evaluate.groups import group_table
from workbench.evaluate.ladder import bundled_subjects
from workbench.evaluate.testsets import eval_root, load_testset

SUITES = sorted((Path(__file__).resolve().parents[2] / "eval" / "suites").glob("*.yaml"))


def test_whole_suite_on_the_ladder(capsys):
    code = main(["eval", "--suite", "skin-tone-ladder", "--json"])
    printed = json.loads(capsys.readouterr().out)
    assert code == 0, printed["checks"]
    report = Path(printed["files"]["json"])
    data = json.loads(report.read_text())
    out = report.parent
    for name in ("report.md", "report.html", "per_image.csv", "plots/groups_mst_band.png", "plots/groups_mst.png",
                 "plots/skin_shift.png", "plots/likeness_hist.png"):  # fmt: skip
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    groups = data["groups"]
    assert set(groups["mst_band"]["mst_abs_error"]["groups"]) == {"MST 1-3", "MST 4-6", "MST 7-10"}
    assert set(groups["mst"]["face_found"]["groups"]) == {str(i) for i in range(1, 11)}
    people = {s.subject_id for s in bundled_subjects()}  # 8: 4 women, 4 men
    assert set(groups["subject_id"]["verified"]["groups"]) == people
    for per_metric in groups.values():
        for m in per_metric.values():
            for g in m["groups"].values():
                assert g["lo"] <= g["est"] <= g["hi"]
            assert m["gap_ci"][0] <= m["gap"] <= m["gap_ci"][1]
    # Measurement validity: the measured swatch matches the label by construction for (almost) every face.
    assert data["metrics"]["skin.mst_abs_error"] <= 0.5
    # Judged: the 10 recoloured variants per person; references are compared against, holdouts set aside.
    assert data["summary"]["n_images"] == 10 * len(people) and data["baseline"]["metrics"]
    run = mlflow.get_run(printed["run_id"])
    assert run.info.status == "FINISHED" and "skin.mst_abs_error" in run.data.metrics
    assert run.data.params["suite"] == "skin-tone-ladder"


@pytest.mark.parametrize("path", SUITES, ids=[p.stem for p in SUITES])
def test_every_suite_loads(path):
    config = load_suite(str(path))
    assert isinstance(config, EvalConfig) and config.suite == path.stem
    if config.baseline:
        assert (eval_root() / "baselines" / f"{config.baseline}.json").is_file()


def test_bad_suite_options_are_refused():
    with pytest.raises(WorkbenchError, match="vibes"):
        EvalConfig.from_dict({"metrics": ["likeness", "vibes"]})
    with pytest.raises(WorkbenchError, match="min"):
        EvalConfig(thresholds={"x": {"atleast": 1}})


def test_hub_testset_offline_says_what_to_do():
    with pytest.raises(WorkbenchError, match="offline.*mst-ladder"):
        load_testset("fairface")


def test_group_table_gap_ratio_and_worst_group():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({
        "band": ["light"] * 30 + ["deep"] * 30,
        "verified": np.r_[np.ones(27), np.zeros(3), np.ones(18), np.zeros(12)],
        "delta_e2000": np.r_[rng.normal(2, 0.5, 30), rng.normal(6, 0.5, 30)],
    })  # fmt: skip
    g = group_table(table, ["band", "missing"], n_boot=300)
    verified = g["band"]["verified"]
    assert verified["worst_group"] == "deep" and verified["gap"] == pytest.approx(0.3)
    assert verified["ratio"] == pytest.approx(0.6 / 0.9)
    assert g["band"]["delta_e2000"]["worst_group"] == "deep"
    assert verified["gap_ci"][0] > 0.05  # the gap is real, its interval excludes 0
    assert "skipped" in g["missing"]


def test_group_rates_get_wilson_intervals_not_degenerate_bootstraps():
    import pandas as pd

    from workbench.evaluate.groups import MetricSpec, group_table

    table = pd.DataFrame({"band": ["a"] * 5 + ["b"] * 5, "verified": [1.0] * 5 + [1.0, 0.0, 1.0, 0.0, 0.0]})
    groups = group_table(table, ["band"], (MetricSpec("verified", "higher", "verification rate"),))
    a = groups["band"]["verified"]["groups"]["a"]
    assert a["est"] == 1.0 and a["hi"] == 1.0 and 0.5 < a["lo"] < 0.6  # Wilson 95% for 5/5: [0.566, 1]
    assert groups["band"]["verified"]["worst_group"] == "b"
