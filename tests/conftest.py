"""Test fixtures shared by every test.

Every test gets a fresh workspace and a fresh SQLite MLflow store (mlflow's own tests do the same), and a test
that leaves an MLflow run open or RUNNING fails. Built tiny models are cached once per session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import matplotlib
import mlflow
import numpy as np
import pytest
from hypothesis import settings
from PIL import Image

from workbench.workspace import CACHE_ENV_VAR, ENV_VAR, Workspace

# Property tests draw the same examples on every run (a CI failure can be replayed) and keep no database.
settings.register_profile("workbench", derandomize=True, database=None)
settings.load_profile("workbench")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="session")
def empty_tracking_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its schema already migrated (migrating takes seconds per test)."""
    path = tmp_path_factory.mktemp("tracking-template") / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(autouse=True)
def fresh_tracking(
    tmp_path: Path, model_cache: Path, empty_tracking_db: Path, monkeypatch: pytest.MonkeyPatch
):
    """A fresh workspace and tracking store per test; fail the test if it leaves a run open."""
    # Run in the test's own folder, so that anything written to the current folder stays where erasure tests
    # look and the checkout stays clean (the store's artifacts go beside its database: tmp_path/artifacts).
    monkeypatch.chdir(tmp_path)
    shutil.copyfile(empty_tracking_db, tmp_path / "mlflow.db")
    workspace_dir = tmp_path / "workspace"
    monkeypatch.setenv(ENV_VAR, str(workspace_dir))
    monkeypatch.setenv(CACHE_ENV_VAR, str(model_cache))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("WORKBENCH_ALLOW_DOWNLOAD", raising=False)
    yield
    leaked = mlflow.active_run()
    while mlflow.active_run() is not None:
        mlflow.end_run(status="KILLED")
    running = []
    if (tmp_path / "mlflow.db").exists():
        client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
        experiments = [e.experiment_id for e in client.search_experiments()]
        running = client.search_runs(experiments, "attributes.status = 'RUNNING'") if experiments else []
    mlflow.set_tracking_uri(None)
    if leaked is not None or running:
        pytest.fail(
            f"the test left MLflow run(s) open: {[r.info.run_id for r in running] or leaked.info.run_id}"
        )


@pytest.fixture
def workspace() -> Workspace:
    return Workspace.resolve()


# -- real faces that ship in packages --------------------------------------------------------------------------
@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """Eileen Collins, 512x512 RGB (scikit-image)."""
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="session")
def grace_hopper() -> np.ndarray:
    """Grace Hopper, 600x512 RGB (matplotlib sample data)."""
    path = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(path).convert("RGB"))
