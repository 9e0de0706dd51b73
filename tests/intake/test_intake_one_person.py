"""One person per subject: a photo of someone else is rejected with its distances; two people stop the intake."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageOps

from workbench.demo import sample_photo_set
from workbench.errors import WorkbenchError
from workbench.intake import IntakeConfig, run_intake

pytestmark = pytest.mark.abuse


def _hopper(grace_hopper, folder, n: int) -> list:
    base = Image.fromarray(grace_hopper)
    variants = [base, ImageOps.mirror(base), base.crop((40, 20, 560, 540))][:n]
    paths = []
    for i, image in enumerate(variants):
        paths.append(folder / f"hopper-{i}.jpg")
        image.save(paths[-1], quality=92)
    return paths


def test_someone_else_among_the_subjects_photos_is_rejected_with_the_distances(
    tmp_path, workspace, grace_hopper, record_property
):
    record_property("reliability.bad_inputs", 1)  # a photo of another person in the subject's set
    photos = sample_photo_set(tmp_path / "astronaut")
    intruder = _hopper(grace_hopper, tmp_path, 1)[0]
    result = run_intake("eileen", IntakeConfig(), workspace=workspace, photos=[*photos, intruder])

    by_name = {p.name: p for p in result.photos}
    kept = [p for p in result.photos if p.accepted]
    assert len(kept) >= 3 and intruder.name not in {p.name for p in kept}
    hopper = by_name[intruder.name]
    assert any(
        f"looks like a different person than the other {len(kept)} photos" in r for r in hopper.reasons
    )
    report = json.loads(result.report_path.read_text())
    verdict = next(p for p in report["photos"] if p["path"].endswith(intruder.name))["same_person"]
    assert verdict["metric"] == "l2" and verdict["threshold"] == 0.6
    assert verdict["closest_in_group"] >= 0.6 and all(d >= 0.6 for d in verdict["distances"].values())
    # The astronaut's own photos are within the threshold of each other, and only they reach the dataset.
    for photo in kept:
        assert photo.details["same_person"]["closest_in_group"] < 0.6
    rows = (workspace.dataset_dir("eileen") / "metadata.jsonl").read_text().splitlines()
    assert len(rows) == len(kept)


def test_two_people_in_equal_numbers_stop_with_the_split_advice(
    tmp_path, workspace, grace_hopper, record_property
):
    record_property("reliability.bad_inputs", 1)  # two people's photos in one folder
    photos = sample_photo_set(tmp_path / "astronaut")[:2] + _hopper(grace_hopper, tmp_path, 2)
    with pytest.raises(WorkbenchError, match="more than one person.*folder of their own"):
        run_intake("two-people", IntakeConfig(), workspace=workspace, photos=photos)
    assert not (workspace.dataset_dir("two-people") / "metadata.jsonl").exists()  # nothing trained on


def test_a_single_photo_passes(tmp_path, workspace, grace_hopper):
    result = run_intake(
        "grace", IntakeConfig(), workspace=workspace, photos=_hopper(grace_hopper, tmp_path, 1)
    )
    assert result.n_accepted == 1 and result.photos[0].reasons == []
