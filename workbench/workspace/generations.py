"""A subject's generation runs: the one reader and writer of ``subjects/<id>/generations/<run>/``.

Generation writes, evaluation, the blind test and the app read::

    0000-seed0.png ...     the images, each with its parameters and an AI-generated mark in its metadata
    manifest.jsonl         one line per image, appended as each is saved (what a resumed batch keeps)
    generate.yaml          the batch's config
    contact_sheet.png      thumbnails of the batch (not an output: never evaluated, never shown as one)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.workspace.layout import Workspace

log = logging.getLogger(__name__)
MANIFEST = "manifest.jsonl"
CONFIG_FILE = "generate.yaml"
CONTACT_SHEET = "contact_sheet.png"


@dataclass(frozen=True)
class ImageRecord:
    """One generated image as its manifest line records it; ``params`` holds every recorded parameter."""

    index: int
    seed: int
    file: str
    presets: tuple[str, ...] = ()
    prompt: str = ""
    negative_prompt: str = ""
    steps: int | None = None
    guidance_scale: float | None = None
    scheduler: str | None = None
    seconds: float = 0.0
    params: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageRecord:
        return cls(
            index=int(data["index"]), seed=int(data["seed"]), file=str(data["file"]),
            presets=tuple(data.get("presets") or ()), prompt=data.get("prompt") or "",
            negative_prompt=data.get("negative_prompt") or "", steps=data.get("steps"),
            guidance_scale=data.get("guidance_scale"),
            scheduler=data.get("scheduler") or data.get("scheduler_class"),
            seconds=float(data.get("seconds") or 0.0), params=dict(data),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {**self.params, "index": self.index, "seed": self.seed, "file": self.file,
                "presets": list(self.presets), "seconds": self.seconds}  # fmt: skip


@dataclass(frozen=True)
class GenerationRun:
    """One batch's folder."""

    dir: Path

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def manifest(self) -> Path:
        return self.dir / MANIFEST

    @property
    def config_file(self) -> Path:
        return self.dir / CONFIG_FILE

    @property
    def contact_sheet(self) -> Path:
        return self.dir / CONTACT_SHEET

    def records(self) -> list[ImageRecord]:
        """The run's image records, one per index (the last line for an index wins), sorted by index.

        A torn line (the process died mid-write) is skipped with a warning; the lines after it still count.
        """
        records: dict[int, ImageRecord] = {}
        if self.manifest.is_file():
            for number, line in enumerate(self.manifest.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    record = ImageRecord.from_dict(json.loads(line))
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    log.warning("%s line %d is torn or not a record; skipped", self.manifest, number)
                    continue
                records[record.index] = record
        return [records[i] for i in sorted(records)]

    def images(self) -> list[Path]:
        """The recorded images that are on disk (the outputs: never the contact sheet)."""
        return [self.dir / r.file for r in self.records() if (self.dir / r.file).is_file()]

    def append(self, record: ImageRecord) -> None:
        """Append one record durably and atomically: one ``write`` of a whole line, then fsync.

        A line left torn by an earlier crash gets a newline first, so it cannot swallow this record.
        """
        line = (json.dumps(record.to_dict(), default=str) + "\n").encode()
        fd = os.open(self.manifest, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size and not _ends_with_newline(self.manifest):
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def generation_run(workspace: Workspace, subject: str, run_name: str) -> GenerationRun:
    return GenerationRun(workspace.generation_dir(subject, run_name))


def generation_runs(workspace: Workspace, subject: str) -> list[GenerationRun]:
    """The subject's generation runs that recorded at least one image, newest first."""
    root = workspace.subject_path(subject, "generations")
    runs = [GenerationRun(p) for p in root.iterdir() if p.is_dir()] if root.is_dir() else []
    return sorted((r for r in runs if r.manifest.is_file()), key=lambda r: r.name, reverse=True)


def find_generation(workspace: Workspace, subject: str | None, spec: str | Path | None) -> GenerationRun:
    """A generation run by folder path, by run name of ``subject``, or (no spec) the subject's newest."""
    if spec and Path(spec).is_dir():
        return GenerationRun(Path(spec))
    if subject is None:
        raise WorkbenchError(
            "Pass images=FOLDER (with the subject for likeness), or a test set (testset=NAME)."
        )
    if spec:
        run = generation_run(workspace, subject, str(spec))
        if run.dir.is_dir():
            return run
        raise WorkbenchError(
            f"'{spec}' is neither a folder nor a generation run of '{subject}' (looked in {run.dir.parent})."
        )
    runs = generation_runs(workspace, subject)
    if not runs:
        raise WorkbenchError(
            f"Subject '{subject}' has no generation runs: run `workbench generate` first or pass images=FOLDER."
        )
    return runs[0]
