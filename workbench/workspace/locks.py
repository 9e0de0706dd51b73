"""Per-subject and per-run locks, so that two processes never write the same folder at once.

Two intakes of one subject, two ``--resume`` of one training run or two generations with one run name would
interleave their files (and register a model twice). Each takes a lock file inside the folder it writes
(``subjects/<id>/.lock``, ``loras/<run>/.lock``, ``generations/<run>/.lock``) with ``filelock``. The second
caller does not wait: it gets one sentence saying who holds the lock (pid, host, since when, which command).

The operating system releases a lock when its process dies (``flock``), so a killed process never leaves a
stale lock behind; the owner note beside it is informational only.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from workbench.errors import WorkbenchError
from workbench.workspace.layout import Workspace

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"  # not inside the lock file: filelock may truncate that when it opens it
# Seconds a second caller waits before it is told who holds the lock: rides over a lock being handed on, never
# queues behind a run that takes minutes.
DEFAULT_TIMEOUT = 0.5


class LockBusyError(WorkbenchError):
    """Another process (or thread) holds the lock of a subject or run folder."""


def subject_lock(workspace: Workspace, subject: str, stage: str, *, timeout: float = DEFAULT_TIMEOUT):
    """Hold ``subjects/<id>/.lock`` while a stage rewrites the subject's own files (intake)."""
    return folder_lock(workspace.subject_dir(subject), f"Subject '{subject}'", stage, timeout=timeout)


def run_lock(folder: Path, stage: str, *, timeout: float = DEFAULT_TIMEOUT):
    """Hold ``<run folder>/.lock`` while a stage writes that run (training, a generation batch)."""
    return folder_lock(folder, f"Run folder {folder}", stage, timeout=timeout)


@contextmanager
def folder_lock(folder: Path, what: str, stage: str, *, timeout: float = DEFAULT_TIMEOUT) -> Iterator[None]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK_FILE), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LockBusyError(
            f"{what} is busy: {describe_owner(folder)}; try again when it has finished."
        ) from None
    owner = folder / OWNER_FILE
    try:
        owner.write_text(json.dumps(_me(stage)))
        yield
    finally:
        owner.unlink(missing_ok=True)
        lock.release()


def describe_owner(folder: Path) -> str:
    """'generate is running in pid 123 on host h since 2026-11-29T15:00:00+00:00 (workbench generate ...)'."""
    try:
        info = json.loads((Path(folder) / OWNER_FILE).read_text())
    except (OSError, ValueError):
        return "another process holds its lock (it has not said which yet)"
    return (
        f"{info.get('stage', 'a command')} is running in pid {info.get('pid', '?')} on host "
        f"{info.get('host', '?')} since {info.get('since', '?')} (`{info.get('command', '?')}`)"
    )


def _me(stage: str) -> dict[str, object]:
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    return {
        "stage": stage, "pid": os.getpid(), "host": socket.gethostname(),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": " ".join(argv)[:200],
    }  # fmt: skip
