"""After a subject went through the app, every stage and a notebook, `forget` leaves no copy of its face anywhere.

"Anywhere" is the workspace (its subject folders, the app's upload cache and published copies), the tracking
store, the artifact store and $TMPDIR, which this test points at a folder of its own so the search is bounded.
A copy is any file whose bytes contain, or whose SHA-256 equals, one of the subject's photos or face crops.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr
import mlflow
import nbformat
import pytest
from erasure import leaks, mentions, personal_files, run_stages, tracking_traces
from nbclient import NotebookClient

from workbench.cli import main
from workbench.demo import sample_photo_set
from workbench.intake.dataset import accepted_originals
from workbench.ui.context import AppContext
from workbench.ui.publish import use_workspace_cache
from workbench.ui.tabs.subject import SubjectTab

pytestmark = pytest.mark.abuse
APP_SUBJECT = "forget-app-w4r"
NOTEBOOK_SUBJECT = "nb-subject"  # the name notebooks/01_quickstart.ipynb files its sample photos under
QUICKSTART = Path(__file__).resolve().parents[2] / "notebooks" / "01_quickstart.ipynb"


@pytest.fixture
def bounded_tmp(tmp_path, monkeypatch) -> Path:
    """$TMPDIR (and Python's cached tempdir) inside the test's folder, for this process and the kernel."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _upload_through_the_app(workspace, uploads: list[Path]) -> None:
    """What the Subject tab's button does with files Gradio has put in its upload cache."""
    cache = use_workspace_cache(workspace)  # what build_app does
    gradio_copies = []
    for i, photo in enumerate(uploads):
        target = cache / f"{i:040x}" / photo.name  # Gradio keeps each upload in a hashed folder
        target.parent.mkdir(parents=True)
        shutil.copy(photo, target)
        gradio_copies.append(str(target))
    tab = SubjectTab(AppContext(workspace))
    outputs = list(tab.on_intake(APP_SUBJECT, gradio_copies, gr.Request(username=None, session_hash="s"),
                                 progress=lambda *a, **k: None))  # fmt: skip
    _, _, thumbnails, _, cleared = outputs[-1]
    assert cleared is None  # the file list is emptied: its files are gone
    assert thumbnails and all(Path(t).is_relative_to(cache) for t, _ in thumbnails)  # published in the cache
    assert not any(Path(p).exists() for p in gradio_copies)  # the uploads are gone once intake kept them
    # The Generate tab shows and zips the images through the same publisher.
    tab.ctx.publish.zip_files(list((workspace.subject_dir(APP_SUBJECT) / "originals").iterdir()), "photos")


def test_forget_leaves_nothing_after_the_app_every_stage_and_a_notebook(
    workspace, tmp_path, bounded_tmp, model_cache, monkeypatch, capsys, record_property
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # the default: the embedded store inside the workspace
    uploads = sample_photo_set(tmp_path / "camera")
    _upload_through_the_app(workspace, uploads)
    assert len(accepted_originals(workspace, APP_SUBJECT)) >= 3
    done = run_stages(
        APP_SUBJECT, workspace, intake_run_id=workspace.read_subject(APP_SUBJECT)["intake"]["run_id"]
    )

    monkeypatch.setenv("WORKBENCH_NOTEBOOK_MODEL", "tiny")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(QUICKSTART, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    assert workspace.read_subject(NOTEBOOK_SUBJECT)

    needles = [p.read_bytes() for s in (APP_SUBJECT, NOTEBOOK_SUBJECT) for p in personal_files(workspace, s)]
    shutil.rmtree(tmp_path / "camera")  # the person's own photos on their own disk: not the workbench's
    roots = [tmp_path, model_cache]  # workspace, embedded tracking + artifact store, $TMPDIR, built models
    assert leaks(roots, needles)  # the search finds them before forget

    for subject in (APP_SUBJECT, NOTEBOOK_SUBJECT):
        assert main(["forget", subject, "--json"]) == 0
        assert f'"subject_id": "{subject}"' in capsys.readouterr().out

    left = leaks(roots, needles)
    record_property("reliability.leaks", len(left))
    assert left == []
    client = mlflow.MlflowClient(f"sqlite:///{workspace.mlflow_dir / 'mlflow.db'}")
    for subject in (APP_SUBJECT, NOTEBOOK_SUBJECT):
        assert tracking_traces(client, subject) == []
        assert mentions([workspace.root, bounded_tmp], subject) == []
    for run_id in done.run_ids:
        assert mentions([workspace.root], run_id) == []
    assert not os.listdir(workspace.subjects_dir)
