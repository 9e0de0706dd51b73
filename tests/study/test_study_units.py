"""A study's expansion, cell ids and report arithmetic, without Ray or models."""

from pathlib import Path

import numpy as np
import pytest

from workbench.errors import WorkbenchError
from workbench.study import StudyConfig, expand
from workbench.study.report import TOO_FEW, build_report, to_markdown

ROOT = Path(__file__).resolve().parents[2]
STUDIES = sorted((ROOT / "experiments" / "studies").glob("*.yaml"))


def _identities(n: int) -> list[dict]:
    bands = ["MST 1-3", "MST 4-6", "MST 7-10"]
    return [{"subject_id": f"id{i}", "photos": [f"/x/id{i}.png"], "holdout": [],
             "groups": {"mst_band": bands[i % 3], "gender": "female"}} for i in range(n)]  # fmt: skip


@pytest.mark.parametrize("path", STUDIES, ids=[p.stem for p in STUDIES])
def test_every_shipped_study_loads_and_its_methods_name_real_recipes(path):
    from workbench.train import TrainConfig

    study = StudyConfig.from_yaml(path)
    for method in study.methods:
        if method.get("train"):
            TrainConfig.from_yaml(method["train"]).with_overrides(method.get("train_overrides") or {})


def test_cells_are_identity_x_method_x_seed_with_stable_distinct_ids():
    config = StudyConfig(
        methods=[{"name": "a", "train": "tiny-demo"}, {"name": "b", "train": None}], seeds=[0, 1]
    )
    cells = expand(config, _identities(8))
    assert len(cells) == 8 * 2 * 2
    ids = [c.cell_id() for c in cells]
    assert len(set(ids)) == len(ids)
    assert ids == [c.cell_id() for c in expand(config, _identities(8))]  # same study, same ids
    # Report-only options keep the study (and its finished cells); what a cell computes does not.
    assert config.replace(n_boot=50, min_identities=5).study_id() == config.study_id()
    assert config.replace(images_per_cell=4).study_id() != config.study_id()


def test_a_tuning_free_method_is_a_method_without_a_train_recipe():
    config = StudyConfig(methods=[{"name": "ipa", "train": None, "generate": {"lora_scale": 0.5}}])
    assert expand(config, _identities(1))[0].method["generate"] == {"lora_scale": 0.5}


@pytest.mark.parametrize(
    "methods, message",
    [([], "at least one method"), ([{"train": "x"}], "needs a name"),
     ([{"name": "a", "recipe": "x"}], "unknown key"), ([{"name": "a"}, {"name": "a"}], "unique")],
)  # fmt: skip
def test_bad_methods_are_refused_with_the_fix(methods, message):
    with pytest.raises(WorkbenchError, match=message):
        StudyConfig(methods=methods)


def _cells(values: dict[tuple[str, str, int], float]) -> list[dict]:
    bands = {"id0": "MST 1-3", "id1": "MST 1-3", "id2": "MST 1-3", "id3": "MST 7-10"}
    return [{"identity": i, "method": m, "seed": s, "groups": {"mst_band": bands[i]},
             "metrics": {"delta_L": v, "usable_yield": float("nan")}} for (m, i, s), v in values.items()]  # fmt: skip


def test_report_averages_each_identity_first_and_bootstraps_identities():
    # id0 has two seeds (1 and 3 -> 2); a per-image or per-cell mean would weight it twice.
    values = {("a", "id0", 0): 1.0, ("a", "id0", 1): 3.0, ("a", "id1", 0): 4.0, ("a", "id2", 0): 6.0,
              ("a", "id3", 0): 10.0, ("b", "id0", 0): 1.0, ("b", "id1", 0): 2.0, ("b", "id2", 0): 3.0,
              ("b", "id3", 0): 4.0}  # fmt: skip
    report = build_report(_cells(values), group_by=["mst_band"], min_identities=2, n_boot=500)
    overall = report["overall"]["a"]["delta_L"]
    assert overall["est"] == pytest.approx(np.mean([2.0, 4.0, 6.0, 10.0])) and overall["n"] == 4
    assert overall["lo"] <= overall["est"] <= overall["hi"]
    groups = report["groups"]["mst_band"]["a"]
    assert groups["MST 1-3"]["delta_L"]["est"] == pytest.approx(4.0)
    assert groups["MST 7-10"]["delta_L"] == {"est": TOO_FEW, "n": 1}  # one identity is not a group estimate
    paired = report["paired"]["b - a"]["delta_L"]  # per identity: -1, -2, -3, -6
    assert paired["est"] == pytest.approx(-3.0) and paired["n"] == 4
    assert "usable_yield" not in report["metrics"]  # never measured: no row of NaNs
    assert report["worst"]["mst_band"]["a"]["delta_L"]["why"].startswith("fewer than two groups")
    markdown = to_markdown(report, "t")
    assert "too few (n=1)" in markdown and "nan" not in markdown.lower()
