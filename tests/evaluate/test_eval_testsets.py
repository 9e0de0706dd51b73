"""Test sets: the 8-person counterfactual ladder, metadata validation, and MST-E / FHIBE read in place.

The ladder is built once for this file at two Monk levels (1 and 10: 8 people x 4 images); the published sets
are faked as tiny folder trees in their released layouts, with labels chosen so the mapping has a known
answer.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workbench.errors import WorkbenchError
from workbench.evaluate.datasets import _fhibe_row, age_band, fhibe_view
from workbench.evaluate.ladder import LADDER_VERSION, bundled_subjects
from workbench.evaluate.skin import MST_HEX, fitzpatrick_from_ita, hex_to_rgb, ita, mst_band, srgb_to_lab
from workbench.evaluate.testsets import TestSetSpec, find_spec, ladder_dir, load_testset, read_metadata
from workbench.faces import get_backend
from workbench.study.identities import ladder_assignment
from workbench.workspace import CACHE_ENV_VAR, Workspace

LEVELS = [1, 10]


@pytest.fixture(scope="module")
def ladder_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace whose cache holds the ladder at levels 1 and 10, built once (about 10 s on 2 CPUs)."""
    ws = Workspace.resolve(tmp_path_factory.mktemp("ladder-ws"))
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv(CACHE_ENV_VAR, raising=False)
        ladder_dir(ws, LEVELS)
    return ws


@pytest.fixture(scope="module")
def ladder(ladder_ws: Workspace) -> Path:
    return ladder_ws.root / "cache" / "testsets" / f"mst-ladder-v{LADDER_VERSION}-levels-1-10"


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


# -- the ladder ----------------------------------------------------------------------------------------------
def test_bundled_subjects_are_eight_people_four_women_four_men_with_honest_sources():
    subjects = bundled_subjects()
    assert len({s.subject_id for s in subjects}) == 8
    assert Counter(s.gender for s in subjects) == {"female": 4, "male": 4}
    assert {s.age_band for s in subjects} == {"18-29", "30-49", "70+"}
    for s in subjects:
        assert s.image.ndim == 3 and s.image.shape[2] == 3 and min(s.image.shape[:2]) >= 112
        if s.subject_id.startswith("insightface-") or s.subject_id == "tom_hanks":
            assert "never redistributed" in s.source and "copyright of its owners" in s.source
        else:
            assert "public domain" in s.source


def test_ladder_rows_roles_and_labels_by_construction(ladder):
    rows = _rows(ladder)
    assert read_metadata(ladder) == rows  # the built ladder passes the same validation a user's set gets
    by_subject: dict[str, list[dict]] = {}
    for row in rows:
        by_subject.setdefault(row["subject_id"], []).append(row)
    assert len(by_subject) == 8 and len(rows) == 8 * (2 + len(LEVELS))
    for subject, mine in by_subject.items():
        roles = Counter(r["role"] for r in mine)
        assert roles == {"reference": 1, "holdout": 1, "variant": len(LEVELS)}, subject
        for row in mine:
            if row["role"] == "variant":
                target = srgb_to_lab(hex_to_rgb(MST_HEX[row["mst"] - 1]))
                assert row["mst_band"] == mst_band(row["mst"])
                assert row["fitzpatrick"] == fitzpatrick_from_ita(float(ita(target)))
            else:  # the person's own skin: no label is claimed
                assert row["mst"] is None and row["fitzpatrick"] is None
    assert sorted({r["mst"] for r in rows if r["mst"]}) == LEVELS
    assert "never redistributed" in (ladder / "README.md").read_text()


def _central_face(backend, image: np.ndarray):
    faces = backend.detect(image) or get_backend("dlib", upsample=1).detect(image)
    h, w = image.shape[:2]
    return min(
        faces, key=lambda f: abs((f.box[0] + f.box[2]) / 2 - w / 2) + abs((f.box[1] + f.box[3]) / 2 - h / 2)
    )


def test_holdout_is_another_view_of_the_same_person_never_a_copy_of_the_reference(ladder):
    backend = get_backend("dlib", upsample=0)
    distances, differences = {}, {}
    for subject in {r["subject_id"] for r in _rows(ladder)}:
        ref = np.asarray(Image.open(ladder / f"{subject}_reference.png").convert("RGB"))
        held = np.asarray(Image.open(ladder / f"{subject}_holdout.png").convert("RGB"))
        differences[subject] = float(np.abs(ref.astype(float) - held.astype(float)).mean())
        embeddings = [backend.embed(img, _central_face(backend, img)) for img in (ref, held)]
        distances[subject] = float(np.linalg.norm(embeddings[0] - embeddings[1]))
    print("holdout vs reference: dlib distance", distances, "mean |pixel difference|", differences)
    # Never the same pixels: a mean absolute difference of at least 10 grey levels (crop, tilt and light all
    # move every pixel; measured 20-49 here).
    assert min(differences.values()) > 10.0
    # Still the same person to dlib: its published same-person threshold is L2 < 0.6 (99.38% on LFW).
    assert max(distances.values()) < 0.6


def test_a_levels_testset_reuses_the_ladder_built_for_those_levels(ladder, ladder_ws, tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV_VAR)
    spec = tmp_path / "two-levels.yaml"
    spec.write_text("source: builtin:mst-ladder\nlevels: [10, 1]\n")
    built = (ladder / "metadata.jsonl").stat().st_mtime_ns
    ds, loaded = load_testset(str(spec), ladder_ws)
    assert loaded.levels == [10, 1] and len(ds) == 8 * (2 + len(LEVELS))
    assert sorted({m for m in ds["mst"] if m is not None}) == LEVELS
    assert (ladder / "metadata.jsonl").stat().st_mtime_ns == built  # not rebuilt


def test_study_ladder_assignment_spreads_people_over_levels():
    genders = ["female", "female", "male", "female", "male", "male", "male", "female"]  # bundled order
    pairs = ladder_assignment(genders, [2, 5, 8, 10])
    assert len(pairs) == 8 and sorted(p for p, _ in pairs) == list(range(8))  # 8 identities, everyone once
    for level in (2, 5, 8, 10):  # one woman and one man per level
        assert sorted(genders[p] for p, lv in pairs if lv == level) == ["female", "male"]
    assert {lv for _, lv in ladder_assignment(genders, [5])} == {5} and len(
        ladder_assignment(genders, [5])
    ) == 8
    ten = ladder_assignment(genders, list(range(1, 11)))
    assert (
        len(ten) == 10 and {lv for _, lv in ten} == set(range(1, 11)) and {p for p, _ in ten} == set(range(8))
    )
    with pytest.raises(WorkbenchError, match="1-10"):
        ladder_assignment(genders, [0, 5])


# -- a user's own imagefolder --------------------------------------------------------------------------------
def _folder(tmp_path: Path, rows: list[dict], csv: bool = False) -> Path:
    folder = tmp_path / "set"
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(["a.png", "b.png", "c.png"]):
        Image.new("RGB", (8, 8), (40 * i, 90, 120)).save(folder / name)
    if csv:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in rows]
        (folder / "metadata.csv").write_text("\n".join(lines) + "\n")
    else:
        (folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


GOOD = [
    {"file_name": "a.png", "subject_id": "p1", "role": "reference", "mst": 3, "mst_band": "MST 1-3"},
    {
        "file_name": "b.png",
        "subject_id": "p1",
        "role": "holdout",
        "mst": 3,
        "age_band": "30-49",
        "gender": "male",
    },
    {"file_name": "c.png", "subject_id": "p1", "mst": 3, "fitzpatrick": "II", "label": "ai"},
]


def test_a_valid_folder_loads_with_the_standard_columns(tmp_path):
    ds, spec = load_testset(str(_folder(tmp_path, GOOD)))
    assert len(ds) == 3 and {"image", "subject_id", "role", "mst", "label"} <= set(ds.column_names)
    assert ds["role"] == ["reference", "holdout", None] and spec.name == "set"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"file_name": None}, "line 2: missing file_name"),
        ({"subject_id": ""}, "line 2: missing subject_id"),
        ({"role": "training"}, "role 'training' is not one of reference, holdout, variant"),
        ({"mst": 11}, "mst 11 is not a Monk level 1-10"),
        ({"mst": 0}, "mst 0 is not a Monk level"),
        ({"mst": 7.5}, "mst 7.5 is not a Monk level"),
        ({"mst": "dark"}, "mst 'dark' is not a Monk level"),
        ({"mst": 8, "mst_band": "MST 1-3"}, "mst_band 'MST 1-3' does not match mst 8"),
        ({"fitzpatrick": "VII"}, "fitzpatrick 'VII' is not a type I-VI"),
        ({"label": "fake"}, "label 'fake' is not real or ai"),
        ({"file_name": "missing.png"}, "no image missing.png"),
        ({"file_name": "a.png"}, "a.png is listed twice"),
    ],
)
def test_bad_metadata_rows_are_refused_with_the_line_and_the_fix(tmp_path, change, match):
    rows = [GOOD[0], {**GOOD[1], **change}, GOOD[2]]
    with pytest.raises(WorkbenchError, match=match):
        load_testset(str(_folder(tmp_path, rows)))


def test_csv_metadata_is_validated_too_and_a_broken_jsonl_line_is_named(tmp_path):
    with pytest.raises(WorkbenchError, match=r"metadata.csv line 3: mst '12' is not a Monk level"):
        read_metadata(_folder(tmp_path, [GOOD[0], {**GOOD[1], "mst": 12}], csv=True))
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "metadata.jsonl").write_text('{"file_name": "a.png", "subject_id": "p"}\n{not json\n')
    with pytest.raises(WorkbenchError, match="line 2 is not JSON"):
        read_metadata(folder)


def test_test_set_definitions_are_checked():
    with pytest.raises(WorkbenchError, match="levels.*builtin:mst-ladder only"):
        TestSetSpec(name="x", source="data/x", levels=[1])
    with pytest.raises(WorkbenchError, match="Monk levels 1-10"):
        TestSetSpec(name="x", source="builtin:mst-ladder", levels=[0, 12])
    for path in sorted((Path(__file__).resolve().parents[2] / "eval" / "testsets").glob("*.yaml")):
        assert find_spec(str(path)).licence != "unknown: check before use", (
            path
        )  # every set names its licence
    assert find_spec("mst-e").source.startswith("mst-e:") and find_spec("fhibe").source.startswith("fhibe:")
    assert find_spec("mst-ladder").levels is None
    assert find_spec("fhibe:/data/fhibe").name == "fhibe"


# -- MST-E, read in place ------------------------------------------------------------------------------------
def _mste_tree(root: Path, golden: bool = True) -> Path:
    """The released layout: mst-e_data/{mst-e_image_details.csv, golden csv, subject_N/<image_ID>}."""
    data = root / "mst-e_data"
    details = ["image_ID,subject_name,MST,pose,lighting,mask"]
    for subject, mst in (("subject_0", 2), ("subject_1", 9)):
        (data / subject).mkdir(parents=True)
        for i, lighting in enumerate(("poorly_lit", "well_lit", "well_lit")):
            name = f"PXL_{subject}_{i}.jpg"
            Image.new("RGB", (16, 16), (30 * mst, 80, 60)).save(data / subject / name)
            details.append(f"{name},{subject},{mst},facing_camera,{lighting},0")
        details.append(f"VID_{subject}.mp4,{subject},{mst},video,well_lit,0")  # videos are listed too
    (data / "mst-e_image_details.csv").write_text("\n".join(details) + "\n")
    if golden:
        (data / "golden_and_adversarial_mst-e_image_ids.csv").write_text(
            "subject,golden_image_id,not_ideal_image_id\n"
            "subject_0,PXL_subject_0_2.jpg,PXL_subject_0_0.jpg\n"
            "subject_1,PXL_subject_1_2.jpg,PXL_subject_1_0.jpg\n"
        )
    return root


def _snapshot(folder: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_mste_is_read_in_place_labels_mapped_golden_images_are_references(tmp_path, workspace):
    root = _mste_tree(tmp_path / "download")
    before = _snapshot(root)
    ds, spec = load_testset(f"mst-e:{root}", workspace)
    assert len(ds) == 6  # 2 people x 3 photos; the 2 videos skipped
    rows = ds.remove_columns("image").to_list()
    assert {(r["subject_id"], r["mst"], r["mst_band"]) for r in rows} == {
        ("subject_0", 2, "MST 1-3"), ("subject_1", 9, "MST 7-10")}  # fmt: skip
    references = sorted(r["subject_id"] for r in rows if r["role"] == "reference")
    assert references == ["subject_0", "subject_1"]
    assert [r["mste_example"] for r in rows if r["role"] == "reference"] == ["golden", "golden"]
    assert all(r["age_band"] is None and r["gender"] is None for r in rows)  # MST-E has no such labels
    # In place: every decoded image is the user's own file, and the download is untouched.
    assert all(Path(ds[i]["image"].filename).is_relative_to(root) for i in range(len(ds)))
    assert _snapshot(root) == before
    view = workspace.cache_dir / "testsets" / "mst-e-view"
    assert (
        len((view / "view.jsonl").read_text().splitlines()) == 6
        and "2 skipped" in (view / "README.md").read_text()
    )
    assert not [p for p in view.rglob("*") if p.suffix in (".jpg", ".png")]  # no image copied
    assert not (view / "metadata.jsonl").exists()  # not an imagefolder a study could train on


def test_mste_without_the_golden_list_picks_a_well_lit_reference_and_a_missing_csv_says_where(
    tmp_path, workspace
):
    root = _mste_tree(tmp_path / "download", golden=False)
    ds, _ = load_testset(f"mst-e:{root / 'mst-e_data'}", workspace)
    references = [Path(ds[i]["image"].filename).name for i in range(len(ds)) if ds[i]["role"] == "reference"]
    assert references == ["PXL_subject_0_1.jpg", "PXL_subject_1_1.jpg"]  # first well-lit photo of each
    with pytest.raises(WorkbenchError, match="No mst-e_image_details.csv.*skintone.google"):
        load_testset(f"mst-e:{tmp_path / 'elsewhere'}", workspace)


# -- FHIBE, read in place ------------------------------------------------------------------------------------
def _fhibe_tree(root: Path) -> Path:
    """Per photo a main_annos_<id>.json beside main_<file_name>, nested like a release."""
    people = [  # (uid, subject, age, pronouns, MST level of the apparent skin swatch, head pose)
        ("001", "s1", 24, ["1. She/her/hers"], 3, "2. Atypical"),
        ("002", "s1", 24, ["1. She/her/hers"], 3, "1. Typical"),
        ("003", "s2", 67, ["2. He/him/his"], 7, "1. Typical"),
        ("004", "s3", 41, ["1. She/her/hers", "3. They/them/their"], 10, "1. Typical"),
    ]
    for uid, subject, age, pronouns, level, pose in people:
        folder = root / "data" / "raw" / "fhibe_downsampled" / f"{subject}" / uid
        folder.mkdir(parents=True)
        rgb = [int(v) for v in hex_to_rgb(MST_HEX[level - 1])]
        Image.new("RGB", (16, 16), tuple(rgb)).save(folder / f"main_{uid}.png")
        person = {"subject_id": subject, "age": age, "pronoun": pronouns, "apparent_skin_color": f"4. {rgb}",
                  "head_pose": pose}  # fmt: skip
        (folder / f"main_annos_{uid}.json").write_text(
            json.dumps({"image": {"file_name": f"{uid}.png"}, "subject_annotation": [person]})
        )
    pair = root / "data" / "raw" / "fhibe_downsampled" / "pair"
    pair.mkdir(parents=True)
    Image.new("RGB", (16, 16)).save(pair / "main_005.png")
    for uid, people_in_it in (("005", [person, person]), ("006", [person])):  # 006 has no photo beside it
        record = {"image": {"file_name": f"{uid}.png"}, "subject_annotation": people_in_it}
        (pair / f"main_annos_{uid}.json").write_text(json.dumps(record))
    return root


def test_fhibe_maps_age_pronoun_and_skin_swatch_and_skips_what_it_cannot_label(tmp_path, workspace):
    root = _fhibe_tree(tmp_path / "fhibe")
    before = _snapshot(root)
    ds, _ = load_testset(f"fhibe:{root}", workspace)
    rows = {Path(ds[i]["image"].filename).name: {k: ds[i][k] for k in ds.column_names if k != "image"}
            for i in range(len(ds))}  # fmt: skip
    assert sorted(rows) == ["main_001.png", "main_002.png", "main_003.png", "main_004.png"]
    # A swatch equal to a Monk swatch maps back to that level (CIEDE2000 distance 0): true by construction.
    assert [rows[f"main_00{i}.png"]["mst"] for i in range(1, 5)] == [3, 3, 7, 10]
    lab = srgb_to_lab(hex_to_rgb(MST_HEX[6]))
    assert rows["main_003.png"]["fitzpatrick"] == fitzpatrick_from_ita(float(ita(lab)))
    assert [rows[f"main_00{i}.png"]["age_band"] for i in range(1, 5)] == ["18-29", "18-29", "50-69", "30-49"]
    assert [rows[f"main_00{i}.png"]["gender"] for i in (1, 3, 4)] == ["female", "male", "other/unstated"]
    assert rows["main_004.png"]["pronoun"] == "She/her/hers; They/them/their"
    # s1's reference is its photo with a typical head pose, not simply its first one.
    references = [n for n, r in sorted(rows.items()) if r["role"] == "reference"]
    assert references == ["main_002.png", "main_003.png", "main_004.png"]
    readme = (workspace.cache_dir / "testsets" / "fhibe-view" / "README.md").read_text()
    assert "1 skipped: not exactly one person" in readme and "1 skipped: photo missing" in readme
    assert _snapshot(root) == before


def test_fhibe_six_published_swatches_are_six_fitzpatrick_types_but_only_four_monk_levels():
    # The six apparent-skin swatches of the 2025-07-16 release (as listed by 3LC's ingestion notebook): the
    # mapping docs/testsets.md states (group FHIBE by fitzpatrick) rests on this.
    swatches = ["[102, 78, 65]", "[136, 105, 81]", "[164, 131, 103]", "[175, 148, 120]", "[189, 163, 137]",
                "[198, 180, 157]"]  # fmt: skip
    rows = [
        _fhibe_row(Path("x.png"), {"subject_id": "s", "apparent_skin_color": s}, Path("a.json"))
        for s in swatches
    ]
    assert [r["fitzpatrick"] for r in rows] == ["VI", "V", "IV", "III", "II", "I"]
    assert [r["mst"] for r in rows] == [8, 7, 6, 6, 5, 5]


def test_fhibe_folder_without_annotations_says_how_to_get_them(tmp_path):
    with pytest.raises(WorkbenchError, match="main_annos_.*fairnessbenchmark"):
        fhibe_view(tmp_path)
    assert [age_band(a) for a in (17, 18, 29, 30, 49, 50, 69, 70, None)] == [
        "0-17", "18-29", "18-29", "30-49", "30-49", "50-69", "50-69", "70+", None]  # fmt: skip
