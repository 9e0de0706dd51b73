"""Atomic, resumable checkpoints: trainable weights, optimizer, LR schedule, RNG states and the step.

A checkpoint is a folder ``checkpoint-<step>`` that only ever appears complete: it is written under a
temporary name, flushed to disk, and renamed (a rename is atomic on POSIX), so a run killed mid-write leaves the
previous checkpoint intact. Only the trainable tensors are saved (a few MB), never the frozen base model.
The data order and the noise are derived from (seed, step) (see ``trainer``), so with these states restored a
resumed CPU run is bit-identical to one that was never stopped.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from workbench.errors import WorkbenchError

PREFIX = "checkpoint-"


def rng_state() -> dict[str, Any]:
    """Every RNG's state as plain JSON: a checkpoint from someone else must never be able to run code
    (a pickle can), so nothing in a checkpoint is read with ``weights_only=False``."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        state["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in state["cuda"]])


def staging_dir(folder: Path, step: int) -> Path:
    return Path(folder) / f".staging-{PREFIX}{step}"


def write_rng(folder: Path, step: int, rank: int) -> None:
    """Every process writes its own RNG state into the staging folder (the main process created it)."""
    (staging_dir(folder, step) / f"rng-{rank}.json").write_text(json.dumps(rng_state()))


def save_checkpoint(
    folder: Path,
    step: int,
    trainable: dict[str, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    extra: dict[str, Any],
    keep: int,
) -> Path:
    """Complete the staging folder of ``step`` and rename it into place; then drop all but ``keep`` newest."""
    staging = staging_dir(folder, step)
    staging.mkdir(parents=True, exist_ok=True)
    save_file(
        {k: v.detach().contiguous().cpu() for k, v in trainable.items()}, staging / "trainable.safetensors"
    )
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    torch.save(scheduler.state_dict(), staging / "scheduler.pt")
    (staging / "state.json").write_text(json.dumps({"step": step, **extra}, indent=2))
    for file in staging.iterdir():
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    target = Path(folder) / f"{PREFIX}{step}"
    if target.exists():  # the same step saved again after a resume: replace it
        shutil.rmtree(target)
    staging.rename(target)
    _fsync_dir(Path(folder))
    for old in list_checkpoints(folder)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return target


def list_checkpoints(folder: Path) -> list[Path]:
    """Complete checkpoints, oldest first (staging folders of a killed run are ignored)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name.removeprefix(PREFIX)))


def latest_checkpoint(folder: Path) -> Path | None:
    found = list_checkpoints(folder)
    return found[-1] if found else None


def load_checkpoint(path: Path, rank: int) -> dict[str, Any]:
    """Everything in a checkpoint, read to CPU; ``rng`` is this process's state (None if it had none)."""
    path = Path(path)
    rng_file = path / f"rng-{rank}.json"
    if not rng_file.is_file() and (path / f"rng-{rank}.pt").is_file():
        raise WorkbenchError(
            f"Checkpoint {path} was written by an older workbench (pickled RNG state, which is not loaded for "
            "safety): start a new run, or resume with the workbench version that wrote it."
        )
    try:
        return {
            "state": json.loads((path / "state.json").read_text()),
            "trainable": load_file(path / "trainable.safetensors"),
            # weights_only=True: tensors, numbers and lists only; a crafted file cannot run code.
            "optimizer": torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True),
            "scheduler": torch.load(path / "scheduler.pt", map_location="cpu", weights_only=True),
            "rng": json.loads(rng_file.read_text()) if rng_file.is_file() else None,
        }
    except (pickle.UnpicklingError, RuntimeError, ValueError, OSError) as exc:
        raise WorkbenchError(
            f"Checkpoint {path} cannot be read safely ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): "
            "it is damaged or holds more than weights; start a new run without --resume."
        ) from exc


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
