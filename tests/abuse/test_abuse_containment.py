"""Issue 12, items 6, 7, 8 and 11: nothing escapes the workspace, nothing foreign gets in, nothing runs code.

* run names that climb out of the subject's folder (``../x``, ``/abs/path``) are refused, on the command line and
  through the API, for generation and training;
* a symlink or a FIFO in an upload folder is refused with a reason, and no byte of its target lands in the
  subject's originals;
* a checkpoint whose ``optimizer.pt`` holds a pickle that would run code is refused, and the code never runs;
* a torn last manifest line (a process killed mid-write) neither swallows the next record nor hides the earlier.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from workbench.cli import main
from workbench.errors import WorkbenchError
from workbench.generate import GenerateConfig, run_generate
from workbench.intake import IntakeConfig, run_intake
from workbench.train import checkpoint as ckpt
from workbench.workspace.generations import GenerationRun, ImageRecord

pytestmark = pytest.mark.abuse

ESCAPES = ["../x", "../../escaped", "/abs/path", "x/../../y", ".hidden", "a b"]
# Through the API a trailing newline is refused too (the command line strips KEY=VALUE values, so it cannot
# pass one).
API_ESCAPES = [*ESCAPES, "ok\n"]


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


# -- 6. run names cannot leave the subject's folder --------------------------------------------------------------
@pytest.mark.parametrize("name", ESCAPES)
def test_generate_cli_refuses_run_names_that_escape(name, workspace, tmp_path, capsys, record_property):
    record_property("reliability.bad_inputs", 1)
    workspace.write_subject("alice", token="ohwx", class_word="woman")
    before = _files_under(tmp_path)
    target = name if not name.startswith("/") else str(tmp_path / "outside")
    status = main(["generate", "--subject", "alice", f"run_name={target}", "count=1", "steps=1"])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "Run name" in err
    assert _files_under(tmp_path) == before, "a refused run name still wrote files"


@pytest.mark.parametrize("name", API_ESCAPES)
def test_generate_api_refuses_run_names_that_escape(name, workspace, tmp_path, record_property):
    record_property("reliability.bad_inputs", 2)
    workspace.write_subject("alice", token="ohwx", class_word="woman")
    target = name if not name.startswith("/") else str(tmp_path / "outside")
    with pytest.raises(WorkbenchError, match="Run name"):
        run_generate("alice", GenerateConfig(run_name=target, count=1), workspace=workspace)
    with pytest.raises(WorkbenchError, match="Run name"):  # the config may also be built without validation
        workspace.generation_dir("alice", target)
    assert not (tmp_path / "outside").exists() and not (workspace.root / "subjects" / "x").exists()


@pytest.mark.parametrize("name", ["../x", "/abs/path", "..", "ok\n"])
def test_train_api_refuses_run_names_that_escape(name, workspace, tmp_path, record_property):
    record_property("reliability.bad_inputs", 1)
    from workbench.train import TrainConfig, run_train

    workspace.write_subject("alice", token="ohwx", class_word="woman")
    before = _files_under(tmp_path)
    target = name if not name.startswith("/") else str(tmp_path / "outside")
    with pytest.raises(WorkbenchError, match="Run name"):
        run_train("alice", TrainConfig(max_train_steps=1), workspace=workspace, run_name=target)
    assert _files_under(tmp_path) - before <= {p for p in _files_under(tmp_path) if "mlflow" in str(p)}
    assert not (tmp_path / "outside").exists() and not (workspace.subjects_dir / "alice" / "x").exists()


# -- 7. links and special files in an upload folder --------------------------------------------------------------
@pytest.fixture
def hostile_upload(tmp_path, astronaut, grace_hopper):
    """A folder with one real photo, a symlink to a 'secret' photo outside it, a link to a text secret and a FIFO."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    secret_photo = secrets / "secret.png"
    Image.fromarray(grace_hopper).save(secret_photo)  # a valid face photo: old code accepted its bytes
    secret_text = secrets / "passwd"
    secret_text.write_text("root:x:0:0:root:/root:/bin/bash\n")
    upload = tmp_path / "upload"
    upload.mkdir()
    Image.fromarray(astronaut).save(upload / "me.png")
    (upload / "holiday.png").symlink_to(secret_photo)
    (upload / "passwd.jpg").symlink_to(secret_text)
    os.mkfifo(upload / "pipe.jpg")
    return upload, [secret_photo, secret_text]


def _unblock_fifo_after(path: Path, seconds: float) -> threading.Thread:
    """Code that reads a FIFO blocks until a writer comes; give old code one, so a regression fails, not hangs."""

    def write() -> None:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # nobody reads it: the intake did not open it, which is what we want
            return
        os.write(fd, b"not a photo")
        os.close(fd)

    timer = threading.Timer(seconds, write)
    timer.daemon = True
    timer.start()
    return timer


def test_intake_refuses_symlinks_and_fifos_and_copies_nothing_of_their_targets(
    workspace, hostile_upload, record_property
):
    record_property("reliability.bad_inputs", 3)
    upload, secrets = hostile_upload
    timer = _unblock_fifo_after(upload / "pipe.jpg", 20)
    config = IntakeConfig(resolution=256, retention_days=0, min_photos=1)
    result = run_intake("alice", config, workspace=workspace, photos=[upload])
    timer.cancel()
    by_name = {p.name: p for p in result.photos}
    for name, kind in (
        ("holiday.png", "symbolic link"),
        ("passwd.jpg", "symbolic link"),
        ("pipe.jpg", "regular"),
    ):
        assert not by_name[name].accepted, f"{name} was accepted"
        assert any(kind in reason for reason in by_name[name].reasons), by_name[name].reasons
    secret_hashes = {hashlib.sha256(p.read_bytes()).hexdigest() for p in secrets}
    stored = [p for p in workspace.subject_dir("alice").rglob("*") if p.is_file()]
    assert stored, "the real photo should have been kept"
    leaked = [p for p in stored if hashlib.sha256(p.read_bytes()).hexdigest() in secret_hashes]
    assert not leaked, f"bytes of a link's target landed in the subject: {leaked}"
    originals = sorted(p.name for p in workspace.originals_dir("alice").iterdir())
    assert originals == ["me.png"]


# -- 8. a checkpoint cannot run code -----------------------------------------------------------------------------
class _Payload:
    """Unpickling this writes a marker file: what a hostile checkpoint would do (or worse)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _hostile_checkpoint(folder: Path, marker: Path) -> Path:
    path = folder / "checkpoint-5"
    path.mkdir(parents=True)
    (path / "state.json").write_text(json.dumps({"step": 5}))
    save_file({"w": torch.zeros(2)}, str(path / "trainable.safetensors"))
    torch.save({"state": {}, "param_groups": [], "x": _Payload(marker)}, path / "optimizer.pt")
    torch.save({"last_epoch": 5}, path / "scheduler.pt")
    (path / "rng-0.json").write_text(json.dumps({}))
    return path


def test_checkpoint_with_code_in_its_pickle_is_refused_and_never_runs(tmp_path, record_property):
    record_property("reliability.faults", 1)
    marker = tmp_path / "marker.txt"
    path = _hostile_checkpoint(tmp_path / "checkpoints", marker)
    assert ckpt.latest_checkpoint(tmp_path / "checkpoints") == path
    with pytest.raises(WorkbenchError, match="cannot be read safely"):
        ckpt.load_checkpoint(path, 0)
    assert not marker.exists(), "unpickling the checkpoint ran code"


# -- 11. a torn manifest line ------------------------------------------------------------------------------------
def _record(index: int) -> ImageRecord:
    return ImageRecord.from_dict({"index": index, "seed": 100 + index, "file": f"{index:04d}-seed{100 + index}.png",
                                  "prompt": "a photo"})  # fmt: skip


def test_torn_manifest_line_is_skipped_and_does_not_swallow_the_next_record(
    tmp_path, caplog, record_property
):
    record_property("reliability.faults", 1)
    run = GenerationRun(tmp_path / "run")
    run.dir.mkdir()
    run.append(_record(0))
    with open(run.manifest, "ab") as handle:  # the process died in the middle of writing record 1
        handle.write(b'{"index": 1, "seed": 101, "fi')
    run.append(_record(2))
    with caplog.at_level(logging.WARNING):
        records = run.records()
    assert [r.index for r in records] == [0, 2]
    assert records[1].seed == 102 and records[1].file == "0002-seed102.png"
    assert any("torn" in m for m in caplog.messages)
    lines = run.manifest.read_bytes().split(b"\n")
    assert lines[-1] == b"" and all(
        line.endswith(b"}") or line.startswith(b'{"index": 1') for line in lines[:-1]
    )


def test_manifest_lines_are_whole_when_appended_from_many_threads(tmp_path, record_property):
    record_property("reliability.faults", 40)
    run = GenerationRun(tmp_path / "run")
    run.dir.mkdir()
    threads = [threading.Thread(target=run.append, args=(_record(i),)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.index for r in run.records()] == list(range(40))
    assert np.all([json.loads(line)["index"] >= 0 for line in run.manifest.read_text().splitlines()])
