"""Team mode: `forget` against a real `mlflow server` on PostgreSQL erases the subject's runs, artifacts and models.

Before, forget called the SQL store's private ``_hard_delete_run``, which a server's ``RestStore`` lacks: it
crashed and left runs, artifacts and photos. Now it uses the public client API, then ``mlflow gc``.
"""

from __future__ import annotations

import shutil

import mlflow
import pytest
from erasure import leaks, personal_files, run_stages, tracking_traces
from mlflow.entities import ViewType

from workbench.cli import main
from workbench.demo import sample_photo_set
from workbench.workspace.lifecycle import BACKEND_ENV_VAR

pytestmark = [pytest.mark.team, pytest.mark.abuse]
SUBJECT = "team-forget-k3v"
OTHER = "team-nodb-p8q"


def test_forget_through_a_tracking_server_leaves_no_run_model_tag_or_photo(
    team_server, workspace, tmp_path, monkeypatch, capsys, record_property
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.tracking_uri)
    monkeypatch.setenv(BACKEND_ENV_VAR, team_server.backend_store_uri)  # the operator's database, for gc
    photos = sample_photo_set(tmp_path / "upload")[:4]
    done = run_stages(SUBJECT, workspace, photos=photos)
    needles = [p.read_bytes() for p in personal_files(workspace, SUBJECT)]
    client = mlflow.MlflowClient(team_server.tracking_uri)
    assert tracking_traces(client, SUBJECT)  # runs, tags and the registered LoRA name the subject
    assert leaks([team_server.artifacts], needles)  # intake logged the photos (opt-in) to the artifact store

    assert main(["forget", SUBJECT, "--json"]) == 0
    report = capsys.readouterr().out
    assert '"purged": true' in report and all(run_id in report for run_id in done.run_ids)

    assert tracking_traces(client, SUBJECT) == []
    experiments = [e.experiment_id for e in client.search_experiments(view_type=ViewType.ALL)]
    left = client.search_runs(experiments, run_view_type=ViewType.ALL)
    assert not set(done.run_ids) & {r.info.run_id for r in left}
    for run_id in done.run_ids:
        with pytest.raises(mlflow.exceptions.MlflowException):
            client.get_run(run_id)  # purged by `mlflow gc`, not only marked deleted
    shutil.rmtree(tmp_path / "upload")  # the test's own source photos: not the workbench's to erase
    left = leaks([team_server.artifacts, workspace.root, tmp_path], needles)
    record_property("reliability.leaks", len(left) + len(tracking_traces(client, SUBJECT)))
    assert left == []


def test_forget_without_database_access_deletes_and_says_how_to_purge(
    team_server, workspace, tmp_path, monkeypatch
):
    from workbench.intake import IntakeConfig, run_intake
    from workbench.workspace.lifecycle import forget_subject

    monkeypatch.setenv("MLFLOW_TRACKING_URI", team_server.tracking_uri)
    monkeypatch.delenv(BACKEND_ENV_VAR, raising=False)
    photos = sample_photo_set(tmp_path / "upload")[:2]
    intake = run_intake(OTHER, IntakeConfig(log_originals=True), workspace=workspace, photos=photos)
    needles = [p.read_bytes() for p in personal_files(workspace, OTHER)]

    report = forget_subject(OTHER, workspace)

    assert report["runs_deleted"] == [intake.run_id] and not report["purged"]
    assert report["purge_command"].startswith("mlflow gc --backend-store-uri")
    assert intake.run_id in report["purge_command"]
    client = mlflow.MlflowClient(team_server.tracking_uri)
    assert client.get_run(intake.run_id).info.lifecycle_stage == "deleted"  # until the operator's gc
    assert tracking_traces(client, OTHER) == []  # but no tag names the subject any more
    assert leaks([team_server.artifacts, workspace.root], needles) == []  # and the photos are gone
