"""Every ``--json`` output is exactly one JSON document on stdout (issue 12, item 15).

Against a tracking server MLflow prints "🏃 View run ... at ..." on stdout whenever a run ends; it skips that
for local stores, so the ``mlflow_prints_links`` fixture makes it print them here too, exactly as it does for a
server. Progress bars and every other print must go to stderr.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from workbench.cli import main

SUBJECT = "ann"
FAST_TRAIN = ["max_train_steps=2", "resolution=64", "rank=4", "checkpointing_steps=0",
              "validation_inference_steps=2", "validation_prompts=a photo of {instance}"]  # fmt: skip


@pytest.fixture
def mlflow_prints_links(monkeypatch):
    from mlflow.tracking._tracking_service.client import TrackingServiceClient

    def log_url(self, run_id):  # what MLflow writes for a RestStore (a tracking server)
        sys.stdout.write(f"🏃 View run {run_id} at: http://mlflow.example/#/experiments/0/runs/{run_id}\n")
        sys.stdout.write("🧪 View experiment at: http://mlflow.example/#/experiments/0\n")

    monkeypatch.setattr(TrackingServiceClient, "_log_url", log_url)


@pytest.fixture
def run_json(capsys, mlflow_prints_links):
    """``run_json(*argv)``: run ``workbench ARGV --json`` and parse stdout, which must be one JSON document."""
    seen_links = []

    def run(*argv: str, status: int = 0):
        code = main([*argv, "--json"])
        captured = capsys.readouterr()
        assert code == status, captured.err
        seen_links.append("View run" in captured.err)
        return json.loads(captured.out)  # fails on anything besides the one document ("Extra data")

    run.seen_links = seen_links
    return run


def test_every_stage_command_forget_and_sweep_print_one_json_document(tmp_path, run_json):
    from workbench.demo import sample_photo_set

    photos = tmp_path / "photos"
    sample_photo_set(photos)
    intake = run_json("intake", "--subject", SUBJECT, str(photos), "resolution=64")
    assert intake["n_accepted"] > 0 and intake["run_id"]
    train = run_json("train", "--subject", SUBJECT, *FAST_TRAIN, "register_model=false")
    assert train["steps"] == 2
    generate = run_json("generate", "--subject", SUBJECT, f"lora={train['lora_file']}", "count=2", "steps=2",
                        "resolution=64", "presets=soft-studio")  # fmt: skip
    assert generate["generated"] == 2
    evaluation = run_json("eval", "--subject", SUBJECT, "--images", generate["run_name"], "thresholds={}",
                          "n_boot=20", "metrics=likeness,skin,provenance,ranking")  # fmt: skip
    assert evaluation["run_id"] and evaluation["metrics"]
    sweep = run_json("sweep", str(_sweep_file(tmp_path)))
    assert len(sweep["rows"]) == 1 and sweep["errors"] == []
    # A trial that fails is reported and fails the command, never silently missing from the table.
    unmeasured = _sweep_file(tmp_path, metric="face_distance")  # the tiny preset finds no face to measure
    failed = run_json("sweep", str(unmeasured), status=1)
    assert failed["rows"] == [] and "was not measured" in failed["errors"][0]
    forget = run_json("forget", SUBJECT)
    assert forget["subject_id"] == SUBJECT and forget["found"]
    assert all(run_json.seen_links[:-1]), "MLflow's links should have gone to stderr"  # forget ends no run


def test_demo_json_is_one_document(run_json):
    summary = run_json("demo", "--steps", "2", "--images-per-preset", "1")
    assert set(summary["runs"]) == {"intake", "train", "generate", "evaluate"}
    assert all(run_json.seen_links)


def test_prints_of_subprocesses_do_not_reach_stdout_either():
    """In a real process, file descriptor 1 is redirected as well: a child process cannot print into the JSON."""
    script = textwrap.dedent("""
        import os, subprocess, sys
        from workbench.cli.output import print_json, stdout_to_stderr
        with stdout_to_stderr():
            print("a print")
            subprocess.run([sys.executable, "-c", "print('a child process')"], check=True)
            os.write(1, b"a native write\\n")
        print_json({"ok": float("nan"), "path": __import__("pathlib").Path("/x")})
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"ok": None, "path": "/x"}
    for line in ("a print", "a child process", "a native write"):
        assert line in done.stderr


def _sweep_file(tmp_path, metric: str = "train_loss"):
    recipe = tmp_path / "tiny-fast.yaml"
    recipe.write_text("stage: train\nmodel: tiny\nregister_model: false\n" + "".join(
        f"{item.replace('=', ': ', 1)}\n" for item in FAST_TRAIN if "prompts" not in item))  # fmt: skip
    sweep = tmp_path / f"sweep-{metric}.yaml"
    sweep.write_text(f"stage: sweep\nsubject_id: {SUBJECT}\nrecipe: {recipe}\ngrid: {{rank: [4]}}\n"
                     f"images_per_cell: 1\ngenerate_steps: 2\nmetric: {metric}\n")  # fmt: skip
    return sweep
