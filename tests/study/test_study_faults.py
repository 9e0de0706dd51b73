"""A study survives a dead worker and a dead driver: re-running completes it, no cell run twice, none lost."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import mlflow
import pytest

from tests.study.helpers import TINY_TRAIN, cell_runs, tiny_study
from workbench.study import run_study

pytestmark = pytest.mark.slow
ONE_METHOD = [{"name": "lora-r4", "train": "tiny-demo", "train_overrides": TINY_TRAIN}]


@pytest.fixture
def ray_shutdown():
    yield
    import ray

    ray.shutdown()


def _wait_for(predicate, timeout: float = 400.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError("timed out")


def _assert_each_cell_finished_once(study_id: str, n_cells: int) -> list:
    runs = cell_runs(study_id)
    finished = Counter(r.data.tags["workbench.study.cell_id"] for r in runs if r.info.status == "FINISHED")
    assert len(finished) == n_cells and set(finished.values()) == {1}  # none lost, none run twice
    assert not [r for r in runs if r.info.status == "RUNNING"]
    return runs


def test_a_killed_worker_loses_only_its_cell_which_ray_runs_again(workspace, ray_shutdown):
    config = tiny_study(max_identities=3, methods=ONE_METHOD)
    killed: list[str] = []

    def kill_one_worker():
        def running_cell():
            runs = cell_runs(config.study_id())
            return next((r for r in runs if r.info.status == "RUNNING"), None)

        run = _wait_for(running_cell)
        pid = int(run.data.tags["workbench.study.worker"].rsplit(":", 1)[1])
        os.kill(pid, signal.SIGKILL)  # the Ray worker process running that cell
        killed.append(run.data.tags["workbench.study.cell_id"])

    killer = threading.Thread(target=kill_one_worker, daemon=True)
    killer.start()
    result = run_study(config, workspace, num_cpus=2, progress=False)
    killer.join(timeout=5)
    assert killed and result.failed == [] and len(result.cells) == 3
    runs = _assert_each_cell_finished_once(result.study_id, 3)
    dead = [
        r for r in runs if r.data.tags["workbench.study.cell_id"] == killed[0] and r.info.status == "KILLED"
    ]
    # Ended KILLED by whoever saw first that its process was gone: the retry's own stage run on this host
    # (workbench.tracking.mark_dead_runs) or the driver, which closes what is left RUNNING at the end.
    assert len(dead) == 1
    assert {"workbench.ended_by", "workbench.study.orphaned"} & set(dead[0].data.tags)


def test_a_killed_driver_resumes_on_rerun_without_rerunning_finished_cells(tmp_path, workspace):
    config = tiny_study(max_identities=4, methods=ONE_METHOD)
    path = config.save_yaml(tmp_path / "study.yaml")
    command = [sys.executable, "-m", "workbench.cli", "study", str(path), "--num-cpus", "2"]
    driver = subprocess.Popen(
        command, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:

        def one_done_one_running():
            runs = cell_runs(config.study_id())
            states = Counter(r.info.status for r in runs)
            return states["FINISHED"] >= 1 and states["RUNNING"] >= 1

        _wait_for(one_done_one_running)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and the local Ray it started (one process group)
        driver.wait(timeout=30)
    time.sleep(2)  # let any worker notice its raylet is gone
    before = {r.data.tags["workbench.study.cell_id"] for r in cell_runs(config.study_id())
              if r.info.status == "FINISHED"}  # fmt: skip
    assert before and len(before) < 4

    rerun = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    import json

    output = json.loads(rerun.stdout)
    assert output["skipped"] == len(before) and output["ran"] == 4 - len(before)
    runs = _assert_each_cell_finished_once(config.study_id(), 4)
    for cell_id in before:  # finished before the kill: still exactly one run, the old one
        assert sum(r.data.tags["workbench.study.cell_id"] == cell_id for r in runs) == 1
    assert mlflow.MlflowClient().get_run(output["run_id"]).info.status == "FINISHED"
