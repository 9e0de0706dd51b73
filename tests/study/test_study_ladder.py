"""The issue's study: 8 ladder identities across the Monk bands x two LoRA recipes on a local Ray with 2 CPUs.

The report's numbers are recomputed here from the cells' own stage runs in MLflow (the train runs' logged
losses and the eval runs' usable yield), identity by identity, and must match.
"""

from collections import defaultdict

import mlflow
import numpy as np
import pytest

from tests.study.helpers import cell_runs, children, tiny_study
from workbench.study import run_study

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_shutdown():
    yield
    import ray

    ray.shutdown()


def test_ladder_study_of_eight_identities_and_two_methods_reports_per_group_with_cis(workspace, ray_shutdown):
    config = tiny_study(group_by=["mst_band"], min_identities=2)
    result = run_study(config, workspace, num_cpus=2, progress=False)
    assert result.failed == [] and result.ran == 16 and len(result.cells) == 16

    runs = cell_runs(result.study_id)
    assert len(runs) == 16 and all(r.info.status == "FINISHED" for r in runs)
    identities = {r.data.tags["workbench.study.identity"] for r in runs}
    bands = {r.data.tags["workbench.study.group.mst_band"] for r in runs}
    assert len(identities) == 8 and bands == {"MST 1-3", "MST 4-6", "MST 7-10"}
    # In parallel: some cell started before another one ended.
    spans = sorted((r.info.start_time, r.info.end_time) for r in runs)
    assert any(b_start < a_end for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False))

    # Recompute from the stage runs: train loss = mean of the last 10 logged losses, usable yield from eval.
    client = mlflow.MlflowClient()
    loss, usable, band_of = defaultdict(dict), defaultdict(dict), {}
    for run in runs:
        method, identity = run.data.tags["workbench.study.method"], run.data.tags["workbench.study.identity"]
        band_of[identity] = run.data.tags["workbench.study.group.mst_band"]
        stages = children(run.info.run_id)
        history = client.get_metric_history(stages["train"].info.run_id, "loss")
        loss[method][identity] = float(
            np.mean([m.value for m in sorted(history, key=lambda m: m.step)][-10:])
        )
        usable[method][identity] = stages["eval"].data.metrics["ranking.usable_yield"]
    report = result.report
    for method in ("lora-r4", "lora-r2"):
        overall = report["overall"][method]
        assert overall["train_loss"]["n"] == 8
        assert overall["train_loss"]["est"] == pytest.approx(np.mean(list(loss[method].values())), rel=1e-6)
        assert overall["usable_yield"]["est"] == pytest.approx(np.mean(list(usable[method].values())))
        assert overall["train_loss"]["lo"] <= overall["train_loss"]["est"] <= overall["train_loss"]["hi"]
        for band, values in report["groups"]["mst_band"][method].items():
            members = [i for i, b in band_of.items() if b == band]
            expected = np.mean([loss[method][i] for i in members])
            assert values["train_loss"]["n"] == len(members)
            assert values["train_loss"]["est"] == pytest.approx(expected, rel=1e-6)
    paired = report["paired"]["lora-r4 - lora-r2"]["train_loss"]
    diffs = [loss["lora-r4"][i] - loss["lora-r2"][i] for i in identities]
    assert paired["n"] == 8 and paired["est"] == pytest.approx(np.mean(diffs), rel=1e-5, abs=1e-9)
    assert set(report["worst"]["mst_band"]) == {"lora-r4", "lora-r2"}
    markdown = open(result.files["markdown"]).read()
    assert "## By mst_band" in markdown and "MST 7-10" in markdown
