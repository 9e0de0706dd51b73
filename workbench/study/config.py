"""A study's config: which identities, which identity methods, which seeds; and its expansion into cells.

A *method* is ``{name, train, train_overrides, generate}``: a LoRA recipe by name (or ``train: null`` for a
tuning-free method such as ``generate: {identity: ip-adapter-face}`` once GenerateConfig has it) plus overrides
of the generate stage. A *cell* is one identity x method x seed; its id is a hash of everything that decides
its result, so re-running a study recognises the cells it has already finished.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from workbench.config import StageConfig, field
from workbench.errors import WorkbenchError

METHOD_KEYS = {"name", "train", "train_overrides", "generate"}
_NOT_IN_STUDY_ID = {"group_by", "min_identities", "n_boot", "cpus_per_cell", "max_retries"}


@dataclass
class StudyConfig(StageConfig):
    name: str = field("study", help="Name of the study (the parent MLflow run's name).")
    testset: str = field(
        "ladder",
        help="Identities: 'ladder' (offline counterfactual MST ladder), a folder with metadata.jsonl, or hub:<id>.",
    )
    ladder_levels: list[int] = field(
        default_factory=lambda: [2, 5, 8, 10],
        help="MST levels of the ladder's identities: each bundled person sits at one level, women and men "
        "alternating.",
    )
    max_identities: int | None = field(None, help="Use at most this many identities (spread over groups).")
    methods: list[dict[str, Any]] = field(
        default_factory=lambda: [{"name": "lora", "train": "tiny-demo"}],
        help="Identity methods: {name, train: recipe or null, train_overrides: {}, generate: {}}.",
    )
    model: str = field("tiny", help="Model preset, hub id or folder, for every cell.")
    intake: dict[str, Any] = field(
        default_factory=dict, help="Intake options for every identity, e.g. {warn_only: [tilt, overexposed]}."
    )
    presets: list[str] = field(
        default_factory=lambda: ["soft-studio"], help="Style presets generated per cell."
    )
    images_per_cell: int = field(2, help="Images generated per cell.")
    generate_steps: int | None = field(None, help="Denoising steps per image; none = the presets' own.")
    seeds: list[int] = field(
        default_factory=lambda: [0], help="Seeds (training and generation) per identity."
    )
    eval_suite: str = field("default", help="Eval suite every cell's images are scored with.")
    group_by: list[str] = field(default_factory=lambda: ["mst_band"], help="Identity columns to report by.")
    min_identities: int = field(3, help="Fewest identities in a group for a number (else 'too few').")
    n_boot: int = field(1000, help="Bootstrap resamples over identities.")
    cpus_per_cell: float = field(1.0, help="Ray CPUs per cell (on machines without CUDA).")
    max_retries: int = field(1, help="Ray re-runs of a cell whose worker died.")

    def __post_init__(self) -> None:
        if not self.methods:
            raise WorkbenchError(
                "A study needs at least one method, e.g. methods: [{name: lora, train: tiny-demo}]."
            )
        names = []
        for method in self.methods:
            if not isinstance(method, dict) or "name" not in method:
                raise WorkbenchError(f"Each study method needs a name, got {method!r}.")
            unknown = set(method) - METHOD_KEYS
            if unknown:
                raise WorkbenchError(
                    f"Method '{method['name']}' has unknown key(s) {', '.join(sorted(unknown))}: "
                    f"use {', '.join(sorted(METHOD_KEYS))}."
                )
            names.append(method["name"])
        if len(set(names)) != len(names):
            raise WorkbenchError(f"Study method names must be unique, got {names}.")
        if not self.seeds:
            raise WorkbenchError("A study needs at least one seed, e.g. seeds: [0].")
        if self.images_per_cell < 1:
            raise WorkbenchError("images_per_cell must be at least 1.")

    def study_id(self) -> str:
        """Hash of the whole study: the parent run is found by it, so a re-run continues the same study."""
        # How it is run and reported does not change what the cells compute.
        data = {k: v for k, v in self.to_dict().items() if k not in _NOT_IN_STUDY_ID}
        return _digest(data)


@dataclass
class CellConfig(StageConfig):
    """Everything one cell does; logged on the cell's run, its hash is the cell id."""

    study_id: str = field("", help="The study this cell belongs to.")
    identity: str = field("", help="Subject id of the identity in the test set.")
    method: dict[str, Any] = field(default_factory=dict, help="The method (see StudyConfig.methods).")
    seed: int = field(0, help="Seed of training and generation.")
    model: str = field("tiny", help="Model preset, hub id or folder.")
    intake: dict[str, Any] = field(default_factory=dict, help="Intake option overrides.")
    presets: list[str] = field(default_factory=list, help="Style presets.")
    images: int = field(2, help="Images generated.")
    generate_steps: int | None = field(None, help="Denoising steps.")
    eval_suite: str = field("default", help="Eval suite.")
    photos: list[str] = field(default_factory=list, help="Reference photos of the identity (files).")
    groups: dict[str, Any] = field(default_factory=dict, help="The identity's group columns (mst_band, ...).")

    def cell_id(self) -> str:
        # Group labels describe the identity and photo paths differ per machine; the study id covers the test set.
        data = {k: v for k, v in self.to_dict().items() if k not in ("groups", "photos")}
        return _digest(data)


def expand(config: StudyConfig, identities: list[dict[str, Any]]) -> list[CellConfig]:
    """identity x method x seed, in a stable order (identities first, so early cells span the groups)."""
    study = config.study_id()
    return [
        CellConfig(
            study_id=study,
            identity=ident["subject_id"],
            method=method,
            seed=seed,
            model=config.model,
            intake=dict(config.intake),
            presets=list(config.presets),
            images=config.images_per_cell,
            generate_steps=config.generate_steps,
            eval_suite=config.eval_suite,
            photos=list(ident["photos"]),
            groups=dict(ident["groups"]),
        )  # fmt: skip
        for seed in config.seeds
        for method in config.methods
        for ident in identities
    ]


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]
