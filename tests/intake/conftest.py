"""Fixtures for the intake tests: real faces from packages, written to disk the way users upload them."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="session")
def _empty_tracking_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema already migrated (migrating takes seconds per test)."""
    import mlflow

    path = tmp_path_factory.mktemp("tracking-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def _run_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _empty_tracking_db: Path):
    # With MLFLOW_TRACKING_URI set (as the shared fixture does), MLflow puts artifacts under ./mlruns:
    # keep them inside the test's own folder so the erasure tests see everything and the checkout stays clean.
    monkeypatch.chdir(tmp_path)
    # The shared fixture points MLflow at tmp_path/mlflow.db; start it from the migrated empty store.
    shutil.copyfile(_empty_tracking_db, tmp_path / "mlflow.db")


@pytest.fixture(scope="session")
def dlib_backend():
    from workbench.faces import get_backend

    return get_backend("dlib")


@pytest.fixture(scope="session")
def save_jpeg():
    """Write a JPEG as a camera would, optionally with an EXIF capture date ("YYYY:MM:DD HH:MM:SS")."""
    return _save_jpeg


def _save_jpeg(image: np.ndarray, path: Path, quality: int = 92, date: str | None = None) -> Path:
    exif = Image.Exif()
    if date:
        exif.get_ifd(0x8769)[0x9003] = date  # DateTimeOriginal, "YYYY:MM:DD HH:MM:SS"
    Image.fromarray(image).save(path, quality=quality, exif=exif)
    return path
