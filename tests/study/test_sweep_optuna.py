"""A TPE sweep with ASHA pruning on the tiny preset, run through Ray Tune in two installments.

Pruned trials end early (fewer training steps logged) and are PRUNED in Optuna and tagged and KILLED in
MLflow; the second call continues the same Optuna study from its journal file in the workspace.
"""

import tempfile
from pathlib import Path

import mlflow
import optuna
import pytest

from workbench.demo import sample_photo_set
from workbench.intake import IntakeConfig, run_intake
from workbench.sweep import PRUNED_TAG, SWEEP_TAG, SweepConfig, run_sweep

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def ray_shutdown():
    yield
    import ray

    ray.shutdown()


def _trials(result) -> list:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(result.storage))
    return optuna.load_study(study_name=result.study_name, storage=storage).get_trials()


def test_tpe_sweep_prunes_early_marks_pruned_trials_and_continues_its_study(workspace, ray_shutdown):
    with tempfile.TemporaryDirectory() as folder:
        run_intake(
            "demo", IntakeConfig(resolution=64), workspace=workspace, photos=sample_photo_set(Path(folder))
        )
    config = SweepConfig.from_yaml(ROOT / "experiments" / "sweeps" / "tiny-tpe-pruning.yaml")
    assert config.sampler == "tpe" and config.pruning and config.total_trials() == 6

    first = run_sweep(config, workspace, num_cpus=2, max_trials=3)  # as if stopped after three trials
    earlier = {t.number: t.params for t in _trials(first) if t.state.is_finished()}
    assert len(earlier) == 3

    second = run_sweep(config, workspace, num_cpus=2)
    assert (second.run_id, second.study_name, second.ran) == (first.run_id, first.study_name, 3)
    trials = _trials(second)
    assert len([t for t in trials if t.state.is_finished()]) == 6
    assert {t.number: t.params for t in trials if t.number in earlier} == earlier  # same study, continued

    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`{SWEEP_TAG}` = '{config.sweep_id()}' and tags.`workbench.stage` = 'trial'"
    )
    by_trial = {r.data.tags["workbench.sweep.trial"]: r for r in runs}
    pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert pruned and complete, [t.state for t in trials]
    max_steps = config.overrides["max_train_steps"]
    for trial in pruned + complete:
        run = by_trial[trial.user_attrs["tune_trial_id"]]
        train = client.search_runs(experiments, f"tags.`mlflow.parentRunId` = '{run.info.run_id}'")[0]
        steps = max(m.step for m in client.get_metric_history(train.info.run_id, "loss"))
        if trial in pruned:
            assert run.data.tags[PRUNED_TAG] == "true" and run.info.status == "KILLED"
            assert train.data.tags[PRUNED_TAG] == "true" and train.info.status == "KILLED"
            assert steps < max_steps  # ended early
        else:
            assert run.data.tags[PRUNED_TAG] == "false" and run.info.status == "FINISHED"
            assert steps == max_steps
    rows = {row["trial"]: row for row in second.rows}
    assert {rows[t.number]["state"] for t in pruned} == {"PRUNED"}
