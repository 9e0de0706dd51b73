"""The identities of a study, read from a test set in the imagefolder layout.

Layout (the one the evaluation suite documents): a folder of images and ``metadata.jsonl`` with one row per
image: ``file_name``, ``subject_id``, ``role`` (``reference`` photos are what intake and training see,
``holdout`` ones are kept out of training), and group columns (``mst``, ``mst_band``, ``age_band``, ``gender``).

``ladder`` builds such a folder offline, once, into the workspace cache: the eight bundled real faces
(``workbench.evaluate.ladder.bundled_subjects``, four women and four men) are spread over the requested Monk
levels, each (face, level) one identity (labels true by construction), with a few reference photos made from
it the way the demo makes its photo set (mirror, zoom, tilt, warm light) and one holdout. With levels
[2, 5, 8, 10] that is 8 identities, one woman and one man per level; see :func:`ladder_assignment`.
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
    """The folder's identities, from ``metadata.jsonl`` rows read and checked by the evaluation's test-set reader
    (one layout, one validator; docs/testsets.md)."""
    from workbench.evaluate.testsets import read_metadata

    by_subject: dict[str, dict[str, Any]] = defaultdict(lambda: {"photos": [], "holdout": [], "groups": {}})
    for row in read_metadata(folder):
        entry = by_subject[str(row["subject_id"])]
        role = row.get("role") or "reference"  # no role (or CSV's empty cell): the subject's own photo
        entry["photos" if role == "reference" else "holdout"].append(str(folder / row["file_name"]))
        for column in GROUP_COLUMNS:
            if row.get(column) is not None:
                entry["groups"].setdefault(column, row[column])
    identities = [{"subject_id": sid, **entry} for sid, entry in sorted(by_subject.items())]
    empty = [i["subject_id"] for i in identities if not i["photos"]]
    if empty:
        raise WorkbenchError(f"Identities without reference photos in {folder}: {', '.join(empty)}.")
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
    from workbench.evaluate.ladder import LADDER_VERSION

    name = f"study-ladder-v{LADDER_VERSION}-{'-'.join(str(v) for v in levels)}"
    folder = workspace.cache_dir / "testsets" / name
    if not (folder / "metadata.jsonl").is_file():
        build_study_ladder(folder, levels)
    return folder


def ladder_assignment(genders: list[str], levels: list[int]) -> list[tuple[int, int]]:
    """``(person index, level)`` pairs: every person at least once, every level at least once.

    People are taken women first, then men, and slot ``s`` pairs person ``s % n`` with level ``s % k`` over
    ``k * ceil(n / k)`` slots: with 4 women, 4 men and 4 levels each level gets one woman and one man (8
    identities); with one level all 8 people sit at it; with 10 levels two people recur at a second level.
    """
    if not levels or any(not 1 <= int(v) <= 10 for v in levels):
        raise WorkbenchError(f"ladder_levels {levels} must be Monk levels 1-10, e.g. [2, 5, 8, 10].")
    order = sorted(range(len(genders)), key=lambda i: genders[i] != "female")  # stable: women, then men
    n, k = len(order), len(levels)
    return [(order[s % n], int(levels[s % k])) for s in range(k * -(-n // k))]


def build_study_ladder(out: Path, levels: list[int], size: int = 384) -> Path:
    from PIL import Image

    from workbench.evaluate.ladder import _landmarks, bundled_subjects, crop_portrait, recolour_skin
    from workbench.evaluate.skin import MST_LAB, mst_band

    people = bundled_subjects()
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    rows, portraits = [], {}
    for index, level in ladder_assignment([p.gender for p in people], levels):
        person = people[index]
        if index not in portraits:  # a person at two levels is cropped and landmarked once
            portrait = crop_portrait(person.image, size)
            portraits[index] = (portrait, _landmarks(portrait)[1])
        portrait, landmarks = portraits[index]
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
        "# Study ladder\n\nThe bundled real faces (see workbench.evaluate.ladder for sources and licences) "
        f"spread over Monk levels {levels}; each (face, level) is one identity with reference and holdout "
        "photos.\n"
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
