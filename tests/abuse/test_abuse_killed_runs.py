"""Issue 12, item 10: a killed process does not leave its run RUNNING for ever, and ``--resume`` continues a
FAILED or KILLED training run.

A real training subprocess is made to fail (FAILED), resumed in another subprocess that is killed with SIGKILL
(RUNNING in MLflow, nobody left to end it), then ``workbench runs`` marks that run KILLED and ``workbench train
--resume`` finishes the job from the last checkpoint.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

from workbench.cli import main
from workbench.tracking.runs import HOST_TAG, PID_TAG, mark_dead_runs, process_alive
from workbench.train import checkpoint as ckpt
from workbench.workspace.loras import lora_runs

pytestmark = pytest.mark.abuse


def _load_train_fixtures():
    """The train tests' synthetic subject (real faces from packages), reused as is."""
    path = Path(__file__).parents[1] / "train" / "conftest.py"
    spec = importlib.util.spec_from_file_location("abuse_train_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_train = _load_train_fixtures()
intake_template = _train.intake_template
subject = _train.subject
FAST = [w for w in _train.FAST if not w.startswith("checkpointing_steps")]
STEPS = 12

# A training command whose steps are slowed down (so it can be killed mid-run) or that fails at a given step.
TRAINER = """
import os, sys, time
from workbench.train import run as R
original = R._Tracker.on_step
def on_step(self, s, loss, seconds):
    original(self, s, loss, seconds)
    if s.step == int(os.environ.get("FAIL_AT_STEP", "0")):
        raise RuntimeError("injected failure")
    time.sleep(float(os.environ.get("STEP_SLEEP", "0")))
R._Tracker.on_step = on_step
from workbench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _train_process(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", TRAINER, "train", *args],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _runs(capsys, subject: str) -> list[dict]:
    capsys.readouterr()
    assert main(["runs", "--subject", subject, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_killed_training_is_marked_killed_and_resume_finishes_failed_and_killed_runs(
    workspace, subject, capsys, record_property
):
    record_property("reliability.faults", 2)
    args = ["--subject", subject, "model=tiny", f"max_train_steps={STEPS}", "checkpointing_steps=3", *FAST]

    # 1. A run that fails at step 5 ends FAILED, with checkpoint-3 on disk.
    failed = _train_process(args, FAIL_AT_STEP="5")
    assert failed.wait(300) != 0
    (run,) = lora_runs(workspace, subject, finished=None)
    assert not run.finished and ckpt.latest_checkpoint(run.checkpoints).name == "checkpoint-3"
    assert [r["status"] for r in _runs(capsys, subject) if r["stage"] == "train"] == ["FAILED"]

    # 2. --resume continues the FAILED run; this process is killed with SIGKILL after its next checkpoint.
    killed = _train_process(["--subject", subject, "--resume"], STEP_SLEEP="0.5")
    _wait_for(lambda: ckpt.latest_checkpoint(run.checkpoints).name == "checkpoint-6", 300, "checkpoint-6")
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(30)
    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    stuck = client.search_runs(experiments, "attributes.status = 'RUNNING'")
    assert len(stuck) == 1, "SIGKILL should have left exactly one run RUNNING"
    assert (
        stuck[0].data.tags[PID_TAG] == str(killed.pid)
        and stuck[0].data.tags[HOST_TAG] == socket.gethostname()
    )

    # 3. Any later command marks it KILLED: here the listing.
    statuses = [r["status"] for r in _runs(capsys, subject) if r["stage"] == "train"]
    assert statuses == ["KILLED", "FAILED"], statuses
    assert (
        client.get_run(stuck[0].info.run_id)
        .data.tags["workbench.ended_by"]
        .startswith(f"process {killed.pid}")
    )

    # 4. --resume finishes the KILLED run in the same folder, from its last checkpoint.
    assert main(["train", "--subject", subject, "--resume", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["steps"] == STEPS and Path(result["out_dir"]) == run.dir and run.finished
    finished = client.get_run(result["run_id"])
    assert finished.info.status == "FINISHED"
    assert int(finished.data.tags["workbench.resumed_from_step"]) >= 6
    assert [r["status"] for r in _runs(capsys, subject) if r["stage"] == "train"] == [
        "FINISHED",
        "KILLED",
        "FAILED",
    ]


def test_running_runs_of_live_processes_and_other_hosts_are_left_alone(workspace, record_property):
    record_property("reliability.faults", 1)
    from workbench.tracking import configure_tracking

    experiment = configure_tracking(workspace)
    client = mlflow.MlflowClient()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    runs = {
        "alive": {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()},
        "dead": {PID_TAG: str(dead.pid), HOST_TAG: socket.gethostname()},
        "elsewhere": {PID_TAG: str(dead.pid), HOST_TAG: "another-host.example"},
        "untagged": {},
    }
    ids = {
        name: client.create_run(experiment, run_name=name, tags=tags).info.run_id
        for name, tags in runs.items()
    }
    assert not process_alive(dead.pid) and process_alive(os.getpid())
    assert mark_dead_runs(experiment) == [ids["dead"]]
    status = {name: client.get_run(run_id).info.status for name, run_id in ids.items()}
    assert status == {"alive": "RUNNING", "dead": "KILLED", "elsewhere": "RUNNING", "untagged": "RUNNING"}
    for name in ("alive", "elsewhere", "untagged"):  # the autouse fixture fails a test that leaves runs open
        client.set_terminated(ids[name], status="FINISHED")
