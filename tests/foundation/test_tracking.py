from dataclasses import dataclass

import mlflow
import pytest

from workbench.config import StageConfig, field
from workbench.tracking import stage_run, tracking_uri
from workbench.workspace import Workspace


@dataclass
class ProbeConfig(StageConfig):
    subject_id: str = field("s1", help="who")
    rank: int = field(4, help="rank")


def _client() -> mlflow.MlflowClient:
    return mlflow.MlflowClient()


def test_stage_run_logs_config_code_and_environment(workspace, tmp_path):
    with stage_run(workspace, "probe", ProbeConfig(rank=8), subject_id="s1") as run:
        mlflow.log_metric("loss", 0.5)
    data = _client().get_run(run.info.run_id)
    assert data.info.status == "FINISHED"
    assert data.data.params == {"subject_id": "s1", "rank": "8"}
    assert data.data.tags["workbench.stage"] == "probe"
    assert data.data.tags["workbench.subject_id"] == "s1"
    assert "mlflow.source.git.commit" in data.data.tags
    files = {f.path for f in _client().list_artifacts(run.info.run_id, "config")}
    assert files == {"config/probe.yaml"}
    yaml_path = _client().download_artifacts(run.info.run_id, "config/probe.yaml", str(tmp_path))
    assert ProbeConfig.from_yaml(yaml_path) == ProbeConfig(rank=8)  # the artifact re-runs the stage
    versions = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/environment/packages.json")
    assert versions["torch"].startswith("2.")


def test_a_local_store_keeps_its_artifacts_beside_its_database(tmp_path, monkeypatch):
    """A user's own SQLite store: artifacts (photos, reports) go beside the database, never into ./mlruns of
    the folder the command ran in, where forget run from elsewhere would not find them."""
    store = tmp_path / "team-store"
    store.mkdir()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{store / 'mlflow.db'}")
    elsewhere = tmp_path / "some-folder"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with stage_run(Workspace.resolve(tmp_path / "ws"), "probe", ProbeConfig(), subject_id="s1") as run:
        mlflow.log_text("a subject's report", "report/report.md")
    assert run.info.artifact_uri.startswith((store / "artifacts").as_uri())
    assert any((store / "artifacts").rglob("report.md")) and not any(elsewhere.iterdir())


@pytest.mark.parametrize("error, status", [(RuntimeError("boom"), "FAILED"), (KeyboardInterrupt(), "KILLED")])
def test_a_failed_or_interrupted_stage_never_stays_running(workspace, error, status):
    with pytest.raises(type(error)):
        with stage_run(workspace, "probe", ProbeConfig()) as run:
            raise error
    assert _client().get_run(run.info.run_id).info.status == status


def test_stage_runs_nest_under_an_active_parent(workspace):
    with stage_run(workspace, "demo", ProbeConfig()) as parent:
        with stage_run(workspace, "probe", ProbeConfig()) as child:
            pass
    assert _client().get_run(child.info.run_id).data.tags["mlflow.parentRunId"] == parent.info.run_id


def test_embedded_store_lives_in_the_workspace(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    workspace = Workspace.resolve(tmp_path / "ws")
    assert tracking_uri(workspace) == f"sqlite:///{tmp_path / 'ws' / 'mlflow' / 'mlflow.db'}"
    with stage_run(workspace, "probe", ProbeConfig()) as run:
        mlflow.log_text("hello", "note.txt")
    assert (tmp_path / "ws" / "mlflow" / "mlflow.db").is_file()
    artifact_uri = _client().get_run(run.info.run_id).info.artifact_uri
    assert artifact_uri.startswith((tmp_path / "ws" / "mlflow" / "artifacts").as_uri())
