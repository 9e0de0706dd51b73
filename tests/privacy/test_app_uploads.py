"""The app keeps uploads inside the workspace and deletes them once intake has its own copies."""

from __future__ import annotations

import os

import pytest

from workbench.ui.publish import Publisher, discard_uploads, use_workspace_cache

pytestmark = pytest.mark.abuse


def test_the_app_points_gradios_upload_cache_into_the_workspace(workspace, monkeypatch):
    from workbench.ui.app import build_app

    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    build_app(workspace)
    assert os.environ["GRADIO_TEMP_DIR"] == str(workspace.ui_cache_dir)
    assert (workspace.ui_cache_dir.stat().st_mode & 0o777) == 0o700


def test_only_upload_copies_are_discarded(workspace, tmp_path, monkeypatch):
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    cache = use_workspace_cache(workspace)
    upload = cache / "0f3a" / "me.jpg"
    upload.parent.mkdir()
    upload.write_bytes(b"photo")
    own = tmp_path / "me.jpg"  # a file of the user's own (the CLI's and notebooks' inputs)
    own.write_bytes(b"photo")

    assert discard_uploads([upload, own, tmp_path / "missing.jpg"], workspace) == 1
    assert not upload.exists() and not upload.parent.exists() and own.exists()


def test_published_copies_are_filed_under_their_subject(workspace, tmp_path):
    photo = workspace.originals_dir("ann") / "a.jpg"
    photo.parent.mkdir(parents=True)
    photo.write_bytes(b"photo")
    other = tmp_path / "plot.png"
    other.write_bytes(b"plot")
    publish = Publisher(workspace)

    copy, shared = publish(photo), publish(other)
    published = workspace.ui_cache_dir / "published"
    assert copy.startswith(str(published / "ann")) and shared.startswith(str(published / "_shared"))
    assert publish.token in copy and Publisher(workspace).token != publish.token  # unguessable per app
