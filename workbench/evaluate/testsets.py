"""Demographic test sets as HF ``datasets``: a local imagefolder with metadata, a hub id, or the built-in ladder.

A test-set definition lives in ``eval/testsets/<name>.yaml``::

    name: fairface
    source: hub:HuggingFaceM4/FairFace   # or a folder, or builtin:mst-ladder
    config: "1.25"                       # optional hub config
    split: validation
    licence: CC BY 4.0
    columns: {race: ethnicity}           # renames onto the standard columns

Standard columns: ``image``, ``subject_id``, ``mst``, ``mst_band``, ``fitzpatrick``, ``age_band``, ``gender``,
and optionally ``role`` (reference | variant) and ``label`` (real | ai). Hub sets need the network; offline the
error says how to use a local copy instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workbench import resources
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

BUILTIN_LADDER = "builtin:mst-ladder"


@dataclass
class TestSetSpec:
    __test__ = False  # not a pytest test class

    name: str
    source: str
    split: str = "train"
    config: str | None = None
    licence: str = "unknown: check before use"
    columns: dict[str, str] = field(default_factory=dict)
    notes: str = ""


def eval_root() -> Path:
    """``eval/`` of the current directory when it has one, else the built-in one (:mod:`workbench.resources`
    looks in both, name by name)."""
    own = Path.cwd() / "eval"
    return own if own.is_dir() else resources.builtin_dir("testsets").parent


def find_spec(name_or_path: str) -> TestSetSpec:
    """A definition by name (``eval/testsets/<name>.yaml``), a YAML path, a folder, or ``hub:<id>``."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or name_or_path in resources.available("testsets"):
        file = resources.find("testsets", name_or_path)
        data = yaml.safe_load(file.read_text()) or {}
        return TestSetSpec(**{"name": file.stem, **data})
    if path.is_dir():
        return TestSetSpec(name=path.name, source=str(path))
    if name_or_path.startswith("hub:") or name_or_path == BUILTIN_LADDER:
        return TestSetSpec(name=name_or_path.split("/")[-1], source=name_or_path)
    known = resources.names("testsets")
    raise WorkbenchError(
        f"Unknown test set '{name_or_path}': use one of {', '.join(known) or '(none defined)'}, a folder with "
        "images + metadata.jsonl, or hub:<dataset id>."
    )


def load_testset(name_or_path: str, workspace: Workspace | None = None):
    """The test set as a ``datasets.Dataset`` with the standard columns, and its definition."""
    import datasets

    spec = find_spec(name_or_path)
    if spec.source == BUILTIN_LADDER:
        folder = ladder_dir(workspace or Workspace.resolve())
        ds = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
    elif spec.source.startswith("hub:"):
        ds = _load_hub(spec)
    else:
        folder = Path(spec.source).expanduser()
        if not folder.is_dir():
            raise WorkbenchError(
                f"Test set folder {folder} does not exist: check `source:` in its definition."
            )
        if not (folder / "metadata.jsonl").is_file() and not (folder / "metadata.csv").is_file():
            raise WorkbenchError(
                f"Test set folder {folder} has no metadata.jsonl/metadata.csv: add one row per image with "
                "file_name and the demographic columns (subject_id, mst, fitzpatrick, age_band, gender)."
            )
        ds = datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")
    renames = {k: v for k, v in spec.columns.items() if k in ds.column_names and k != v}
    return (ds.rename_columns(renames) if renames else ds), spec


def ladder_dir(workspace: Workspace) -> Path:
    """The built-in ladder, built once into the cache (it holds no personal data)."""
    from workbench.evaluate.ladder import build_ladder

    folder = workspace.cache_dir / "testsets" / "mst-ladder"
    if not (folder / "metadata.jsonl").is_file():
        build_ladder(folder)
    return folder


def _load_hub(spec: TestSetSpec) -> Any:
    import datasets

    hub_id = spec.source.removeprefix("hub:")
    offline = os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1"
    advice = (
        f"download it where the Hub is reachable, export it as an imagefolder (images + metadata.jsonl with "
        "the standard columns), copy the folder here and point `source:` at it, or use testset=mst-ladder "
        f"(built offline). Licence: {spec.licence}."
    )
    if offline:
        raise WorkbenchError(
            f"Test set '{spec.name}' is on the Hugging Face Hub ({hub_id}) and this machine is offline: {advice}"
        )
    try:
        return datasets.load_dataset(hub_id, spec.config, split=spec.split)
    except Exception as exc:  # network errors come in many types
        raise WorkbenchError(
            f"Could not load test set '{spec.name}' from the Hub ({hub_id}): {exc}. {advice}"
        ) from exc
