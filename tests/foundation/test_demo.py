"""The demo end to end, in-process: the runs, params, metrics and artifacts it promises are in MLflow."""

import json

import mlflow
import pytest

from workbench.cli import main
from workbench.demo import DemoConfig, run_demo

STAGES = ("intake", "train", "generate", "evaluate")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, model_cache):
    """One demo run shared by this module's tests (it takes ~tens of seconds)."""
    root = tmp_path_factory.mktemp("demo")
    mp = pytest.MonkeyPatch()
    mp.setenv("WORKBENCH_WORKSPACE", str(root / "workspace"))
    mp.setenv("WORKBENCH_CACHE", str(model_cache))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        from workbench.workspace import Workspace

        workspace = Workspace.resolve()
        summary = run_demo(DemoConfig(), workspace)
        yield summary, mlflow.MlflowClient(summary.tracking_uri)
    finally:
        mlflow.set_tracking_uri(None)
        mp.undo()


def test_demo_creates_a_parent_run_with_one_nested_run_per_stage(demo_run):
    summary, client = demo_run
    assert set(summary.runs) == set(STAGES)
    parent = client.get_run(summary.parent_run_id)
    assert parent.info.status == "FINISHED"
    for stage in STAGES:
        run = client.get_run(summary.runs[stage])
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] == summary.parent_run_id
        assert run.data.tags["workbench.subject_id"] == "demo"
        assert run.data.params, f"{stage} logged no params"
        assert "mlflow.source.git.commit" in run.data.tags
        assert any(a.path == "config" for a in client.list_artifacts(run.info.run_id)), f"{stage}: no config"


def test_demo_stage_runs_hold_their_metrics_and_artifacts(demo_run):
    summary, client = demo_run
    train = client.get_run(summary.runs["train"])
    assert "loss" in train.data.metrics
    train_files = [a.path for a in client.list_artifacts(summary.runs["train"], "lora")]
    assert any(path.endswith(".safetensors") for path in train_files)
    generated = client.list_artifacts(summary.runs["generate"], "images")
    assert len([a for a in generated if a.path.endswith(".png")]) == 4
    evaluation = client.get_run(summary.runs["evaluate"])
    assert "likeness.faces_missing" in evaluation.data.metrics
    assert summary.metrics["intake.n_accepted"] >= 3
    assert summary.metrics["generate.n_images"] == 4


def test_demo_summary_points_to_the_store_and_says_outputs_are_noise(demo_run):
    summary, _ = demo_run
    assert summary.tracking_uri.startswith("sqlite:///") and summary.tracking_uri.endswith("mlflow/mlflow.db")
    assert f"mlflow ui --backend-store-uri {summary.tracking_uri} " in summary.mlflow_ui
    assert "random weights" in summary.notice and "--model sdxl" in summary.notice
    payload = json.loads(json.dumps(summary.to_json()))
    assert payload["paths"]["lora"].endswith(".safetensors")


def test_demo_command_prints_json(capsys, monkeypatch):
    assert main(["demo", "--steps", "4", "--images-per-preset", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload["runs"]) == set(STAGES)
    assert payload["metrics"]["generate.n_images"] == 2


def test_demo_runs_the_sdxl_shape_end_to_end(capsys):
    assert main(["demo", "--model", "tiny-sdxl", "--steps", "4", "--images-per-preset", "1", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    train = mlflow.MlflowClient().get_run(payload["runs"]["train"])
    assert train.data.params["model"] == "tiny-sdxl"
    assert payload["metrics"]["generate.n_images"] == 2
