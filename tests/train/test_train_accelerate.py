"""Scale-out: the same trainer under ``accelerate launch`` with 2 CPU processes (DDP over gloo)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import mlflow

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    """A port nobody holds now: a fixed one can still be in TIME_WAIT from the previous run."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_process_accelerate_run_completes(workspace, subject):
    accelerate = Path(sys.executable).with_name("accelerate")
    # --multi_gpu selects torchrun; with no GPU, accelerate runs the processes on the CPU with gloo.
    cmd = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(_free_port()),
        "-m", "workbench.train", "--subject", subject, "model=tiny", "--json",
        "max_train_steps=4", "checkpointing_steps=2", "rank=4", "validation_inference_steps=2",
        "validation_guidance_scale=1.0", "validation_prompts=a photo of {instance}",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    # In the test's own folder (conftest chdir): MLflow writes artifacts to ./mlruns, never into the checkout.
    done = subprocess.run(cmd, cwd=Path.cwd(), env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout[done.stdout.index("{") :])  # only the main process prints
    assert result["steps"] == 4
    state = json.loads((Path(result["out_dir"]) / "checkpoints" / "checkpoint-2" / "state.json").read_text())
    assert state["world_size"] == 2
    # One RNG state per process (stem only: the file format is the checkpoint module's business).
    rng_files = (Path(result["out_dir"]) / "checkpoints" / "checkpoint-2").glob("rng-*")
    assert sorted(p.stem for p in rng_files) == ["rng-0", "rng-1"]
    runs = mlflow.MlflowClient().search_runs(
        [e.experiment_id for e in mlflow.MlflowClient().search_experiments()]
    )
    assert [r.info.status for r in runs] == ["FINISHED"]  # one run, from the main process only
