"""Local copies of published face test sets, read in place and mapped onto the standard columns.

Two sets the workbench treats as evaluation only (FHIBE's licence forbids training on it; MST-E's terms are
on its page):

* **MST-E**, Google's Monk Skin Tone Examples (Schumann et al. 2023, "Consensus and Subjectivity of Skin Tone
  Annotation for ML Fairness", arXiv:2305.09073; https://skintone.google/mste-dataset): ~1,500 photos and 31
  videos of 19 people, each labelled with one Monk level by an expert.
* **FHIBE**, Sony AI's Fair Human-Centric Image Benchmark (Nature 2025, doi:10.1038/s41586-025-09716-2;
  https://fairnessbenchmark.ai.sony): 10,318 consented photos of 1,981 people with self-reported age and
  pronouns and annotated skin colour.

A loader never copies, converts or moves an image: every row's ``file_name`` is the absolute path of the
user's own file, the ``datasets.Dataset`` it yields decodes those files in place, and the only thing written
is a metadata *view* (``view.jsonl`` and a README naming the licence) in the workspace cache, so a reader can
see how each label was mapped. The view is deliberately not named ``metadata.jsonl``: a study would train on
the photos of an imagefolder, which is not what these sets are for.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from workbench.errors import WorkbenchError
from workbench.evaluate.skin import fitzpatrick_from_ita, ita, mst_band, nearest_mst, srgb_to_lab

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
MSTE_DETAILS = "mst-e_image_details.csv"
MSTE_GOLDEN = "golden_and_adversarial_mst-e_image_ids.csv"
MSTE_LICENCE = "MST-E terms at https://skintone.google/mste-dataset (read them; used for evaluation only)"
FHIBE_LICENCE = "FHIBE licence (Sony AI, https://fairnessbenchmark.ai.sony): evaluation only, no training"
# Age bands of the standard ``age_band`` column (the ladder uses the same ones).
AGE_BANDS = ((17, "0-17"), (29, "18-29"), (49, "30-49"), (69, "50-69"), (10**6, "70+"))


@dataclass
class DatasetView:
    """The rows a loader mapped (standard columns plus the set's own), what it skipped and why."""

    name: str
    licence: str
    rows: list[dict[str, Any]]
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def age_band(age: Any) -> str | None:
    """The standard age band of an age in years (None when unknown)."""
    try:
        years = int(age)
    except (TypeError, ValueError):
        return None
    return next(band for upper, band in AGE_BANDS if years <= upper)


# -- MST-E ---------------------------------------------------------------------------------------------------
def mste_view(folder: str | Path) -> DatasetView:
    """MST-E as released (``mst-e_data.zip`` unzipped): one row per photo, videos skipped.

    Layout assumed (the zip's own; not documented on the download page, confirmed from public code that reads
    it): ``mst-e_data/mst-e_image_details.csv`` with columns ``image_ID, subject_name, MST, pose, lighting,
    mask``, photos at ``mst-e_data/<subject_name>/<image_ID>``, and
    ``golden_and_adversarial_mst-e_image_ids.csv`` (``subject, golden_image_id, not_ideal_image_id``).
    ``folder`` may be ``mst-e_data`` or the folder above it.

    Mapping: ``subject_id`` = subject_name, ``mst`` = MST (the expert label), ``role: reference`` for each
    subject's golden image (its ideal example; without one, its first ``well_lit`` photo), no role (judged)
    for the others; ``pose``, ``lighting``, ``mask`` kept for grouping. MST-E has no age, gender
    or Fitzpatrick labels: those columns stay empty rather than guessed.
    """
    root = _mste_root(Path(folder).expanduser())
    view = DatasetView("mst-e", MSTE_LICENCE, [])
    golden, not_ideal = _mste_examples(root)
    for number, row in enumerate(_read_csv(root / MSTE_DETAILS, ("image_ID", "subject_name", "MST")), 2):
        name, subject = row["image_ID"].strip(), row["subject_name"].strip()
        path = root / subject / name
        if row.get("pose", "").strip() == "video" or path.suffix.lower() not in IMAGE_SUFFIXES:
            view.skip("video or not a photo")
            continue
        if not path.is_file():
            view.skip("listed but missing on disk")
            continue
        mst = _int_label(row["MST"], root / MSTE_DETAILS, number, "MST")
        example = (
            "golden" if (subject, name) in golden else "not_ideal" if (subject, name) in not_ideal else None
        )
        view.rows.append({"file_name": str(path.resolve()), "subject_id": subject, "mst": mst,
                          "mst_band": mst_band(mst), "fitzpatrick": None, "age_band": None, "gender": None,
                          "role": "reference" if example == "golden" else None, "mste_example": example,
                          **{k: row.get(k) for k in ("pose", "lighting", "mask")}})  # fmt: skip
    _first_as_reference(view.rows, lambda r: r.get("lighting") == "well_lit")  # subjects without a golden one
    return _checked(view, root)


def _mste_root(folder: Path) -> Path:
    for root in (folder, folder / "mst-e_data"):
        if (root / MSTE_DETAILS).is_file():
            return root
    raise WorkbenchError(
        f"No {MSTE_DETAILS} in {folder} or {folder / 'mst-e_data'}: download MST-E from "
        "https://skintone.google/mste-dataset, unzip mst-e_data.zip and set `source: mst-e:<that folder>`."
    )


def _mste_examples(root: Path) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
    path = root / MSTE_GOLDEN
    if not path.is_file():
        return set(), set()
    rows = _read_csv(path, ("subject", "golden_image_id"))
    golden = {(r["subject"].strip(), r["golden_image_id"].strip()) for r in rows}
    not_ideal = {(r["subject"].strip(), (r.get("not_ideal_image_id") or "").strip()) for r in rows}
    return golden, not_ideal


# -- FHIBE ---------------------------------------------------------------------------------------------------
def fhibe_view(folder: str | Path) -> DatasetView:
    """FHIBE as released (any of its tarballs, extracted): one row per single-person photo.

    Layout assumed (from Sony AI's data card and 3LC's public ingestion notebook for the 2025-07-16 release,
    not from a published spec): one ``main_annos_<id>.json`` per photo anywhere under ``folder``, the photo
    beside it as ``main_<image.file_name>`` (or ``<image.file_name>``), and in the JSON
    ``subject_annotation``, a list with per person ``subject_id``, ``age`` (years), ``pronoun`` (list),
    ``apparent_skin_color`` (an RGB swatch such as ``"[164, 131, 103]"``, maybe numbered ``"3. [...]"``) and
    ``head_pose``.

    Mapping: ``age_band`` from age; ``gender`` is a proxy from the self-reported pronoun (She/her -> female,
    He/him -> male, anything else or several -> ``other/unstated``; the raw ``pronoun`` is kept).
    ``fitzpatrick`` is the ITA class of the apparent swatch (the six swatches land on I-VI, one each);
    ``mst`` is the nearest Monk swatch by CIEDE2000, a coarse derived label: the six swatches land on MST 5-8
    only, so group FHIBE by ``fitzpatrick``. Photos of two people are skipped (one label per image). Each
    subject's first photo with a typical head pose is its ``reference``; the others are judged.
    """
    root = Path(folder).expanduser()
    annotations = sorted(root.rglob("main_annos_*.json")) if root.is_dir() else []
    if not annotations:
        raise WorkbenchError(
            f"No FHIBE annotations (main_annos_*.json) under {root}: register at "
            "https://fairnessbenchmark.ai.sony, extract the release and set `source: fhibe:<the folder>`."
        )
    view = DatasetView("fhibe", FHIBE_LICENCE, [])
    for path in annotations:
        record = json.loads(path.read_text())
        image = _fhibe_image(path, record)
        people = record.get("subject_annotation") or []
        if image is None:
            view.skip("photo missing beside its annotation")
        elif len(people) != 1:
            view.skip("not exactly one person in the photo")
        else:
            view.rows.append(_fhibe_row(image, people[0], path))
    _first_as_reference(view.rows, lambda r: r.get("head_pose") == "Typical")
    return _checked(view, root)


def _fhibe_image(annotation: Path, record: dict[str, Any]) -> Path | None:
    name = str((record.get("image") or {}).get("file_name") or "")
    for candidate in (f"main_{name}", name):
        if name and (annotation.parent / candidate).is_file():
            return (annotation.parent / candidate).resolve()
    return None


def _fhibe_row(image: Path, person: dict[str, Any], annotation: Path) -> dict[str, Any]:
    rgb = [int(v) for v in re.findall(r"\d+", _unnumbered(str(person.get("apparent_skin_color", ""))))]
    if len(rgb) != 3 or any(v > 255 for v in rgb):
        raise WorkbenchError(
            f"{annotation}: apparent_skin_color {person.get('apparent_skin_color')!r} is not an RGB swatch "
            "'[r, g, b]': check the file is an unmodified FHIBE annotation."
        )
    lab = srgb_to_lab(np.array(rgb, dtype=np.uint8))
    mst, _ = nearest_mst(lab)
    pronouns = [_unnumbered(str(p)) for p in person.get("pronoun") or []]
    return {"file_name": str(image), "subject_id": str(person.get("subject_id")), "mst": mst,
            "mst_band": mst_band(mst), "fitzpatrick": fitzpatrick_from_ita(float(ita(lab))),
            "age_band": age_band(person.get("age")), "gender": _gender_from_pronouns(pronouns),
            "role": None, "pronoun": "; ".join(pronouns), "apparent_skin_rgb": str(rgb),
            "head_pose": _unnumbered(str(person.get("head_pose", "")))}  # fmt: skip


def _gender_from_pronouns(pronouns: list[str]) -> str:
    kinds = {"female" if p.lower().startswith("she/") else "male" if p.lower().startswith("he/") else "other"
             for p in pronouns}  # fmt: skip
    return kinds.pop() if len(kinds) == 1 and kinds != {"other"} else "other/unstated"


def _unnumbered(text: str) -> str:
    """FHIBE numbers its answer options ("3. Typical"); the number is not part of the answer."""
    return re.sub(r"^\s*\d+\.\s+", "", text).strip()


# -- shared --------------------------------------------------------------------------------------------------
def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise WorkbenchError(
                f"{path} has no column(s) {', '.join(missing)} (found {', '.join(reader.fieldnames or [])}): "
                "use the file as released, unedited."
            )
        return list(reader)


def _int_label(value: str, path: Path, line: int, column: str) -> int:
    try:
        return int(float(value))
    except ValueError:
        raise WorkbenchError(f"{path} line {line}: {column} {value!r} is not a number.") from None


def _first_as_reference(rows: list[dict[str, Any]], preferred) -> None:
    """Mark one reference per subject that has none: its first preferred photo, else its first photo."""
    by_subject: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["file_name"]):
        by_subject.setdefault(row["subject_id"], []).append(row)
    for photos in by_subject.values():
        if not any(r["role"] == "reference" for r in photos):
            next((r for r in photos if preferred(r)), photos[0])["role"] = "reference"


def _checked(view: DatasetView, root: Path) -> DatasetView:
    if not view.rows:
        skipped = ", ".join(f"{n} {why}" for why, n in view.skipped.items()) or "nothing listed"
        raise WorkbenchError(
            f"No usable photos in {root} ({skipped}): check the folder holds the whole release."
        )
    return view


def write_view(view: DatasetView, out_dir: Path) -> Path:
    """Write the mapped rows (``view.jsonl``) and a README with licence and skips; never the images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "view.jsonl").write_text("".join(json.dumps(r) + "\n" for r in view.rows))
    skipped = "".join(f"- {n} skipped: {why}\n" for why, n in view.skipped.items()) or "- nothing skipped\n"
    (out_dir / "README.md").write_text(
        f"# {view.name}: metadata view\n\nRows point at the user's own copy, read in place; no image was "
        f"copied.\n\nLicence: {view.licence}. Evaluation only: do not train on these photos or share "
        f"them.\n\n{len(view.rows)} photos.\n{skipped}"
    )
    return out_dir / "view.jsonl"


def view_to_dataset(view: DatasetView):
    """The rows as a ``datasets.Dataset`` whose ``image`` column decodes the user's files in place."""
    import datasets

    columns = list(dict.fromkeys(k for row in view.rows for k in row))
    data = {c: [row.get(c) for row in view.rows] for c in columns if c != "file_name"}
    data["image"] = [row["file_name"] for row in view.rows]
    return datasets.Dataset.from_dict(data).cast_column("image", datasets.Image())


LOADERS = {"mst-e": mste_view, "fhibe": fhibe_view}
