"""The identities of a study, read from a test set in the imagefolder layout.

Layout (the one the evaluation suite documents): a folder of images and ``metadata.jsonl`` with one row per
image: ``file_name``, ``subject_id``, ``role`` (``reference`` photos are what intake and training see,
``holdout`` ones are kept out of training), and group columns (``mst``, ``mst_band``, ``age_band``, ``gender``).

``ladder`` builds such a folder offline, once, into the workspace cache: each bundled real face recoloured to
several Monk levels is one identity (labels true by construction), with a few reference photos made from it the
way the demo makes its photo set (mirror, zoom, tilt, warm light) and one holdout.
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace

GROUP_COLUMNS = ("mst", "mst_band", "fitzpatrick", "age_band", "gender")


def load_identities(
    testset: str, workspace: Workspace, levels: list[int], limit: int | None = None
) -> list[dict[str, Any]]:
    """``[{subject_id, photos: [reference files], holdout: [files], groups: {...}}]`` sorted by subject id."""
    if testset == "ladder":
        folder = study_ladder_dir(workspace, levels)
    elif testset.startswith("hub:"):
        raise WorkbenchError(
            f"Test set {testset}: a study reads a local imagefolder; export the hub set as images + "
            "metadata.jsonl (subject_id, role, mst, ...) and pass its folder, or use testset: ladder."
        )
    else:
        folder = Path(testset).expanduser()
    identities = read_imagefolder(folder)
    return _spread(identities, limit) if limit else identities


def read_imagefolder(folder: Path) -> list[dict[str, Any]]:
    meta = folder / "metadata.jsonl"
    if not meta.is_file():
        raise WorkbenchError(
            f"Test set folder {folder} has no metadata.jsonl: add one row per image with file_name, subject_id, "
            "role (reference|holdout) and group columns such as mst, age_band, gender."
        )
    by_subject: dict[str, dict[str, Any]] = defaultdict(lambda: {"photos": [], "holdout": [], "groups": {}})
    for number, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        row = json.loads(line)
        if "subject_id" not in row or "file_name" not in row:
            raise WorkbenchError(f"{meta} line {number} needs file_name and subject_id.")
        entry = by_subject[str(row["subject_id"])]
        role = row.get("role", "reference")
        entry["photos" if role == "reference" else "holdout"].append(str(folder / row["file_name"]))
        for column in GROUP_COLUMNS:
            if row.get(column) is not None:
                entry["groups"].setdefault(column, row[column])
    identities = [{"subject_id": sid, **entry} for sid, entry in sorted(by_subject.items())]
    empty = [i["subject_id"] for i in identities if not i["photos"]]
    if empty:
        raise WorkbenchError(f"Identities without reference photos in {meta}: {', '.join(empty)}.")
    return identities


def _spread(identities: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` identities taken round-robin over MST bands, so a small study still spans them."""
    bands: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ident in identities:
        bands[ident["groups"].get("mst_band")].append(ident)
    picked: list[dict[str, Any]] = []
    while len(picked) < min(limit, len(identities)):
        for band in list(bands):
            if bands[band] and len(picked) < limit:
                picked.append(bands[band].pop(0))
    return sorted(picked, key=lambda i: i["subject_id"])


def study_ladder_dir(workspace: Workspace, levels: list[int]) -> Path:
    """The ladder identities, built once per set of levels into the cache (no personal data)."""
    folder = workspace.cache_dir / "testsets" / f"study-ladder-{'-'.join(str(v) for v in levels)}"
    if not (folder / "metadata.jsonl").is_file():
        build_study_ladder(folder, levels)
    return folder


def build_study_ladder(out: Path, levels: list[int], size: int = 384) -> Path:
    from PIL import Image

    from workbench.evaluate.ladder import _landmarks, bundled_subjects, crop_portrait, recolour_skin
    from workbench.evaluate.skin import MST_LAB, mst_band

    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    rows = []
    for person in bundled_subjects():
        portrait = crop_portrait(person.image, size)
        _, landmarks = _landmarks(portrait)
        for level in levels:
            subject = f"{person.subject_id.replace('_', '-')}-mst{level:02d}"
            face = Image.fromarray(recolour_skin(portrait, landmarks, MST_LAB[level - 1]))
            base = {"subject_id": subject, "mst": level, "mst_band": mst_band(level),
                    "age_band": person.age_band, "gender": person.gender}  # fmt: skip
            for name, image, role in _photo_variants(face):
                file_name = f"{subject}_{name}.png"
                image.save(tmp / file_name)
                rows.append({"file_name": file_name, "role": role, **base})
    (tmp / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp / "README.md").write_text(
        "# Study ladder\n\nBundled public-domain portraits (see workbench.evaluate.ladder) recoloured to Monk "
        f"levels {levels}; each (face, level) is one identity with reference and holdout photos.\n"
    )
    if out.exists():  # two builders at once: the first one wins
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(out)
    return out


def _photo_variants(face):
    """Reference photos like the demo's sample set, plus one holdout the method never sees."""
    from PIL import ImageOps

    from workbench.demo import _white_balance

    side = face.size[0]
    return [
        ("original", face, "reference"),
        ("mirrored", ImageOps.mirror(face), "reference"),
        (
            "closer",
            face.crop((side // 8, side // 8, side - side // 8, side - side // 8)).resize(face.size),
            "reference",
        ),
        ("warm", _white_balance(face, (1.06, 1.0, 0.92)), "reference"),
        ("tilted", face.rotate(6, fillcolor=(40, 40, 40)), "holdout"),
    ]
