"""Issue 12, item 9: one process per subject intake, per training run and per generation run folder.

Another process holds the lock (a real second process, so the operating system's file lock is what is tested);
the second caller gets one sentence naming the holder (pid, host, since when, which command) at once, never a
wait; and when the holder dies the lock is free again, with nothing stale left behind.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.workspace.locks import LockBusyError, run_lock, subject_lock

pytestmark = pytest.mark.abuse

HOLDER = """
import sys, time
from pathlib import Path
from workbench.workspace import Workspace
from workbench.workspace.locks import run_lock, subject_lock
kind, target, stage = sys.argv[1:4]
lock = subject_lock(Workspace(Path(target)), sys.argv[4], stage) if kind == "subject" else run_lock(Path(target), stage)
with lock:
    print("ready", flush=True)
    time.sleep(120)
"""


class Holder:
    """A second process that holds a lock until it is killed."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, *args],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).parents[2],
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def holders():
    started: list[Holder] = []

    def start(*args: str) -> Holder:
        started.append(Holder(*args))
        return started[-1]

    yield start
    for holder in started:
        if holder.proc.poll() is None:
            holder.kill()


def _assert_names_holder(message: str, holder: Holder, stage: str) -> None:
    assert f"pid {holder.proc.pid}" in message and socket.gethostname() in message, message
    assert stage in message and "since 20" in message and "\n" not in message, message


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1, err
    return err


def test_second_intake_of_a_subject_is_refused_naming_the_holder(
    workspace, holders, tmp_path, astronaut, capsys, record_property
):
    record_property("reliability.faults", 2)
    Image.fromarray(astronaut).save(tmp_path / "me.png")
    holder = holders("subject", str(workspace.root), "intake", "alice")
    began = time.perf_counter()
    with pytest.raises(LockBusyError) as caught:
        from workbench.intake import IntakeConfig, run_intake

        run_intake("alice", IntakeConfig(resolution=256), workspace=workspace, photos=[tmp_path / "me.png"])
    assert time.perf_counter() - began < 5, "the second caller waited instead of being told at once"
    _assert_names_holder(str(caught.value), holder, "intake")
    assert "Subject 'alice' is busy" in str(caught.value)
    assert main(["intake", "--subject", "alice", str(tmp_path / "me.png")]) == 2
    _assert_names_holder(_one_error_line(capsys), holder, "intake")
    assert not (workspace.subject_dir("alice") / "originals").exists(), "the refused intake wrote photos"

    holder.kill()  # the OS frees the lock of a dead process: no stale lock to clean up by hand
    with subject_lock(workspace, "alice", "intake"):
        pass


def test_second_resume_of_a_training_run_is_refused(workspace, holders, capsys, record_property):
    record_property("reliability.faults", 1)
    from workbench.train import TrainConfig

    workspace.write_subject("alice", token="ohwx", class_word="woman")
    run_dir = workspace.lora_dir("alice", "train-20261129-120000-000000")
    run_dir.mkdir(parents=True)
    TrainConfig(max_train_steps=2).save_yaml(run_dir / "train.yaml")  # started, not finished: resumable
    holder = holders("run", str(run_dir), "train")
    assert main(["train", "--subject", "alice", "--resume"]) == 2
    err = _one_error_line(capsys)
    _assert_names_holder(err, holder, "train")
    assert str(run_dir) in err
    assert not (run_dir / "summary.json").exists()


def test_second_generation_with_the_same_run_name_is_refused(workspace, holders, capsys, record_property):
    record_property("reliability.faults", 2)
    from workbench.generate import GenerateConfig, run_generate

    workspace.write_subject("alice", token="ohwx", class_word="woman")
    run_dir = workspace.generation_dir("alice", "shared-name")
    holder = holders("run", str(run_dir), "generate")
    config = GenerateConfig(run_name="shared-name", count=2, steps=1, resolution=64)
    with pytest.raises(LockBusyError) as caught:
        run_generate("alice", config, workspace=workspace)
    _assert_names_holder(str(caught.value), holder, "generate")
    assert not (run_dir / "manifest.jsonl").exists()
    assert main(["generate", "--subject", "alice", "run_name=shared-name", "count=2", "steps=1"]) == 2
    _assert_names_holder(_one_error_line(capsys), holder, "generate")


def test_threads_of_one_process_exclude_each_other_too(tmp_path, record_property):
    """The app runs stages in threads: two of them on one run folder must collide like two processes."""
    record_property("reliability.faults", 1)
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with run_lock(tmp_path / "run", "generate"):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    assert inside.wait(10)
    try:
        with pytest.raises(WorkbenchError, match="is busy: generate is running in pid"):
            with run_lock(tmp_path / "run", "generate"):
                pass
    finally:
        release.set()
        thread.join()
    with run_lock(tmp_path / "run", "generate"):  # free once the first is done
        pass
    assert not (tmp_path / "run" / ".lock.owner").exists()
