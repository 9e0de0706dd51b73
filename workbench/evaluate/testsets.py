"""Demographic test sets as HF ``datasets``: a local imagefolder, a published set read in place, a hub id, or
the built-in counterfactual ladder. The folder layout and every column are documented in docs/testsets.md.

A test-set definition lives in ``eval/testsets/<name>.yaml``::

    name: fairface
    source: hub:HuggingFaceM4/FairFace   # or a folder, mst-e:<folder>, fhibe:<folder>, builtin:mst-ladder
    config: "1.25"                       # optional hub config
    split: validation
    licence: CC BY 4.0
    columns: {race: ethnicity}           # renames onto the standard columns
    levels: [1, 4, 7, 10]                # builtin:mst-ladder only: which Monk levels to build (default all)

Standard columns: ``image``, ``subject_id``, ``role`` (reference | holdout | variant, or none for an image to
judge), ``mst``, ``mst_band``, ``fitzpatrick``, ``age_band``, ``gender`` and optionally ``label`` (real | ai).
A folder's ``metadata.jsonl`` (or ``metadata.csv``) is validated row by row before loading. ``mst-e:`` and
``fhibe:`` read the user's copy in place through :mod:`workbench.evaluate.datasets`. Hub sets need the
network; offline the error says how to use a local copy instead.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from workbench import resources
from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

BUILTIN_LADDER = "builtin:mst-ladder"
ROLES = ("reference", "holdout", "variant")
LABELS = ("real", "ai")
FITZPATRICK = ("I", "II", "III", "IV", "V", "VI")


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
    levels: list[int] | None = None  # builtin:mst-ladder only

    def __post_init__(self) -> None:
        if self.levels is None:
            return
        if self.source != BUILTIN_LADDER:
            raise WorkbenchError(
                f"Test set '{self.name}': `levels` picks the Monk levels of {BUILTIN_LADDER} only; remove it."
            )
        if not self.levels or any(not isinstance(v, int) or not 1 <= v <= 10 for v in self.levels):
            raise WorkbenchError(
                f"Test set '{self.name}': levels {self.levels} must be Monk levels 1-10, e.g. [1, 4, 7, 10]."
            )


def eval_root() -> Path:
    """``eval/`` of the current directory when it has one, else the built-in one (:mod:`workbench.resources`
    looks in both, name by name)."""
    own = Path.cwd() / "eval"
    return own if own.is_dir() else resources.builtin_dir("testsets").parent


def find_spec(name_or_path: str) -> TestSetSpec:
    """A definition by name (``eval/testsets/<name>.yaml``), a YAML path, a folder, ``hub:<id>``,
    ``mst-e:<folder>`` or ``fhibe:<folder>``."""
    from workbench.evaluate.datasets import LOADERS

    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or name_or_path in resources.available("testsets"):
        file = resources.find("testsets", name_or_path)
        data = yaml.safe_load(file.read_text()) or {}
        unknown = sorted(set(data) - {f.name for f in fields(TestSetSpec)})
        if unknown:
            allowed = ", ".join(f.name for f in fields(TestSetSpec))
            raise WorkbenchError(f"Test set {file} has unknown key(s) {', '.join(unknown)}: use {allowed}.")
        return TestSetSpec(**{"name": file.stem, **data})
    if path.is_dir():
        return TestSetSpec(name=path.name, source=str(path))
    if name_or_path.startswith("hub:") or name_or_path == BUILTIN_LADDER:
        return TestSetSpec(name=name_or_path.split("/")[-1], source=name_or_path)
    if name_or_path.partition(":")[0] in LOADERS:
        return TestSetSpec(name=name_or_path.partition(":")[0], source=name_or_path)
    known = resources.names("testsets")
    raise WorkbenchError(
        f"Unknown test set '{name_or_path}': use one of {', '.join(known) or '(none defined)'}, a folder "
        "with images + metadata.jsonl, mst-e:<folder>, fhibe:<folder> or hub:<dataset id>."
    )


def load_testset(name_or_path: str, workspace: Workspace | None = None):
    """The test set as a ``datasets.Dataset`` with the standard columns, and its definition."""
    from workbench.evaluate.datasets import LOADERS

    spec = find_spec(name_or_path)
    kind, _, local = spec.source.partition(":")
    if spec.source == BUILTIN_LADDER:
        ds = _imagefolder(ladder_dir(workspace or Workspace.resolve(), spec.levels))
    elif kind == "hub":
        ds = _load_hub(spec)
    elif kind in LOADERS:
        ds = _load_published(spec, kind, Path(local).expanduser(), workspace or Workspace.resolve())
    else:
        folder = Path(spec.source).expanduser()
        if not folder.is_dir():
            raise WorkbenchError(
                f"Test set folder {folder} does not exist: check `source:` in its definition."
            )
        read_metadata(folder)  # a clear error for a bad row, before datasets' own
        ds = _imagefolder(folder)
    renames = {k: v for k, v in spec.columns.items() if k in ds.column_names and k != v}
    return (ds.rename_columns(renames) if renames else ds), spec


def read_metadata(folder: Path) -> list[dict[str, Any]]:
    """The rows of ``folder/metadata.jsonl`` (or ``metadata.csv``), each checked by :func:`validate_row`."""
    jsonl, table = folder / "metadata.jsonl", folder / "metadata.csv"
    if jsonl.is_file():
        numbered = []
        for number, line in enumerate(jsonl.read_text().splitlines(), 1):
            if line.strip():
                try:
                    numbered.append((number, json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise WorkbenchError(
                        f"{jsonl} line {number} is not JSON ({exc.msg}): one object per line."
                    ) from None
        meta = jsonl
    elif table.is_file():
        with table.open(newline="", encoding="utf-8-sig") as handle:
            numbered = [(n, {k: (v if v != "" else None) for k, v in row.items()})
                        for n, row in enumerate(csv.DictReader(handle), 2)]  # fmt: skip
        meta = table
    else:
        raise WorkbenchError(
            f"Test set folder {folder} has no metadata.jsonl/metadata.csv: add one row per image with "
            "file_name, subject_id and the group columns (role, mst, fitzpatrick, age_band, gender); see "
            "docs/testsets.md."
        )
    seen: set[str] = set()
    for number, row in numbered:
        validate_row(row, f"{meta} line {number}", folder)
        if row["file_name"] in seen:
            raise WorkbenchError(
                f"{meta} line {number}: {row['file_name']} is listed twice; keep one row per image."
            )
        seen.add(row["file_name"])
    if not numbered:
        raise WorkbenchError(f"{meta} has no rows: add one row per image (see docs/testsets.md).")
    return [row for _, row in numbered]


def validate_row(row: Any, where: str, folder: Path | None = None) -> None:
    """Raise a :class:`WorkbenchError` saying what is wrong with one metadata row and how to fix it."""
    from workbench.evaluate.skin import mst_band

    if not isinstance(row, dict):
        raise WorkbenchError(f"{where}: a row must be a JSON object with file_name and subject_id.")
    for column in ("file_name", "subject_id"):
        if row.get(column) in (None, ""):
            raise WorkbenchError(
                f"{where}: missing {column}; every row needs file_name (the image, relative to the folder) "
                "and subject_id (who it shows)."
            )
    if folder is not None and not (folder / str(row["file_name"])).is_file():
        raise WorkbenchError(
            f"{where}: no image {row['file_name']} in {folder}; fix file_name or add the image."
        )
    role = row.get("role")
    if role is not None and role not in ROLES:
        raise WorkbenchError(
            f"{where}: role {role!r} is not one of {', '.join(ROLES)}; fix it, or leave role out for an "
            "image to judge."
        )
    mst = _monk_level(row.get("mst"))
    if mst is False:
        raise WorkbenchError(
            f"{where}: mst {row.get('mst')!r} is not a Monk level 1-10; fix it, or leave it empty."
        )
    if mst is not None and row.get("mst_band") not in (None, mst_band(mst)):
        raise WorkbenchError(
            f"{where}: mst_band {row['mst_band']!r} does not match mst {mst} ({mst_band(mst)}); fix one of "
            "them or drop mst_band."
        )
    fitz = row.get("fitzpatrick")
    if fitz is not None and str(fitz).upper() not in (*FITZPATRICK, "1", "2", "3", "4", "5", "6"):
        raise WorkbenchError(
            f"{where}: fitzpatrick {fitz!r} is not a type I-VI (or 1-6); fix it or leave it empty."
        )
    if row.get("label") is not None and row["label"] not in LABELS:
        raise WorkbenchError(f"{where}: label {row['label']!r} is not real or ai; fix it or leave it out.")


def _monk_level(value: Any) -> int | None | bool:
    """The Monk level of a cell (None when empty), or False when it is not a whole number 1-10."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return int(number) if number.is_integer() and 1 <= number <= 10 else False


def _imagefolder(folder: Path):
    import datasets

    return datasets.load_dataset("imagefolder", data_dir=str(folder), split="train")


def _load_published(spec: TestSetSpec, kind: str, folder: Path, workspace: Workspace):
    """MST-E or FHIBE read in place; the mapped rows (never the images) are written as a view to the cache."""
    from workbench.evaluate.datasets import LOADERS, view_to_dataset, write_view

    view = LOADERS[kind](folder)
    for number, row in enumerate(view.rows, 1):
        validate_row({**row, "file_name": Path(row["file_name"]).name}, f"{kind} row {number}")
    write_view(view, workspace.cache_dir / "testsets" / f"{spec.name}-view")
    return view_to_dataset(view)


def ladder_dir(workspace: Workspace, levels: list[int] | None = None) -> Path:
    """The built-in ladder (all Monk levels, or ``levels``), built once into the cache (no personal data)."""
    from workbench.evaluate.ladder import LADDER_VERSION, build_ladder

    suffix = "" if not levels else "-levels-" + "-".join(str(v) for v in sorted(set(levels)))
    folder = workspace.cache_dir / "testsets" / f"mst-ladder-v{LADDER_VERSION}{suffix}"
    if not (folder / "metadata.jsonl").is_file():
        partial = folder.with_name(f"{folder.name}.partial-{os.getpid()}")  # one per builder process
        shutil.rmtree(partial, ignore_errors=True)
        build_ladder(partial, levels=tuple(levels or range(1, 11)))
        if not (folder / "metadata.jsonl").is_file():  # two builders at once: the first one wins
            shutil.rmtree(folder, ignore_errors=True)
            partial.replace(folder)
        else:
            shutil.rmtree(partial, ignore_errors=True)
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
