"""A study runs its cells as Ray tasks with nested MLflow runs, and a re-run skips the cells that finished."""

import mlflow
import pytest

from tests.study.helpers import TINY_TRAIN, cell_runs, children, tiny_study
from workbench.study import run_study


@pytest.fixture
def ray_shutdown():
    yield
    import ray

    ray.shutdown()


def test_a_small_study_runs_on_local_ray_and_a_rerun_skips_finished_cells(workspace, ray_shutdown):
    # One identity, a LoRA method and a generate-only method (the shape of a tuning-free one): the fast
    # version of tests/study/test_study_ladder.py.
    config = tiny_study(
        max_identities=1, min_identities=1, ladder_levels=[5],
        methods=[{"name": "lora-r2", "train": "tiny-demo", "train_overrides": {**TINY_TRAIN, "rank": 2,
                                                                                 "max_train_steps": 2}},
                 {"name": "no-lora", "train": None}],
    )  # fmt: skip
    first = run_study(config, workspace, num_cpus=2, progress=False)
    assert (first.ran, first.skipped, first.failed) == (2, 0, [])

    runs = cell_runs(first.study_id)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:
        assert run.data.tags["mlflow.parentRunId"] == first.run_id
        stages = children(run.info.run_id)
        expected = {"intake", "generate", "eval"} | (
            {"train"} if run.data.tags["workbench.study.method"] == "lora-r2" else set()
        )
        assert set(stages) == expected and all(r.info.status == "FINISHED" for r in stages.values())
    parent = mlflow.MlflowClient().get_run(first.run_id)
    assert parent.info.status == "FINISHED"
    artifacts = {f.path for f in mlflow.MlflowClient().list_artifacts(first.run_id, "study")}
    assert {"study/study_report.json", "study/study_report.md", "study/study_mst_band.png"} <= artifacts

    again = run_study(config, workspace, num_cpus=2, progress=False)
    assert (again.ran, again.skipped, again.run_id) == (0, 2, first.run_id)  # same parent, nothing re-run
    assert len(cell_runs(first.study_id)) == 2
    assert again.report["overall"] == first.report["overall"]
