"""Fixtures of the app's tests: a request as Gradio builds it, and a subject made by the Subject tab's handler."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from workbench.workspace import Workspace

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture
def local_request():
    """The request of the one researcher on loopback (no login)."""
    import gradio as gr

    return gr.Request(username=None, session_hash="page-1")


@pytest.fixture
def subject(workspace: Workspace, tmp_path: Path) -> str:
    """A subject filed through the Subject tab's handler (real intake on a real face from scikit-image)."""
    from workbench.demo import sample_photo_set
    from workbench.stage import StageEvents
    from workbench.ui.handlers import subject as S
    from workbench.ui.sessions import Viewer

    photos = sample_photo_set(tmp_path / "photos")[:4]
    job = S.start_intake(workspace, Viewer(), "astro", [str(p) for p in photos])
    result = job.call(StageEvents())
    assert result.n_accepted >= 2
    return job.subject
