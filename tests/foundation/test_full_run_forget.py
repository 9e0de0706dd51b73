"""`forget` after a full tiny run (intake, train, generate, evaluate) leaves nothing of the subject behind."""

from pathlib import Path

import mlflow
from mlflow.entities import ViewType

from workbench.cli import main
from workbench.demo import DemoConfig, run_demo

SUBJECT = "forget-me-z9k"  # unusual enough that finding these bytes anywhere means something was left behind


def _files_mentioning(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_forget_after_a_full_run_leaves_no_file_run_or_model(workspace, tmp_path, capsys):
    summary = run_demo(DemoConfig(subject_id=SUBJECT, train_steps=4, images_per_preset=1), workspace)
    run_ids = [summary.parent_run_id, *summary.runs.values()]
    client = mlflow.MlflowClient()
    assert client.get_registered_model(SUBJECT)  # the trained LoRA was registered under the subject's name
    assert _files_mentioning(tmp_path, SUBJECT.encode())

    assert main(["forget", SUBJECT, "--json"]) == 0
    report = capsys.readouterr().out
    assert SUBJECT in report

    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    assert client.search_runs(experiments, run_view_type=ViewType.ALL) == []
    assert client.search_registered_models() == []
    assert not workspace.subject_dir(SUBJECT).exists()
    # Not a byte of the subject id or of any of its run ids anywhere: workspace, SQLite store, artifacts.
    assert _files_mentioning(tmp_path, SUBJECT.encode()) == []
    for run_id in run_ids:
        assert _files_mentioning(tmp_path, run_id.encode()) == []
