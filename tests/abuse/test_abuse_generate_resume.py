"""Issue 12, item 12: a generation batch killed mid-call and resumed gives exactly the images of an uninterrupted
run (the pipeline calls are cut from the whole plan, so every image is drawn with the same batch of seeds)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from workbench.generate import GenerateConfig, run_generate
from workbench.stage import Progress, StageEvents, StageStopped
from workbench.workspace.generations import GenerationRun

pytestmark = pytest.mark.abuse

FAST = {"steps": 2, "resolution": 64, "batch_size": 3, "presets": ["soft-studio"], "count": 7, "seed": 11}


class DieAfter(StageEvents):
    """The process dies right after the ``k``-th image is saved, in the middle of a pipeline call's images."""

    def __init__(self, k: int):
        super().__init__()
        self.k = k

    def progress(self, update: Progress) -> None:
        if update.done >= self.k:
            raise StageStopped(f"killed after {self.k} images")


def _pixels(run: GenerationRun) -> dict[int, np.ndarray]:
    return {r.index: np.asarray(Image.open(run.dir / r.file)) for r in run.records()}


@pytest.mark.parametrize("k", [1, 4])
def test_resumed_batch_is_pixel_identical_to_an_uninterrupted_one(workspace, k, record_property):
    record_property("reliability.faults", 1)
    workspace.write_subject("alice", token="ohwx", class_word="woman")
    whole = run_generate("alice", GenerateConfig(run_name="whole", **FAST), workspace=workspace)

    config = GenerateConfig(run_name="resumed", **FAST)
    with pytest.raises(StageStopped):
        run_generate("alice", config, workspace=workspace, events=DieAfter(k))
    resumed_run = GenerationRun(workspace.generation_dir("alice", "resumed"))
    assert len(resumed_run.records()) == k  # killed mid-call: calls hold 3 images, k is not a multiple of 3
    saved_before = {i: (resumed_run.dir / r.file).read_bytes() for i, r in enumerate(resumed_run.records())}

    resumed = run_generate("alice", config, workspace=workspace)
    assert (resumed.generated, resumed.skipped) == (FAST["count"] - k, k)
    expected, got = _pixels(GenerationRun(whole.out_dir)), _pixels(resumed_run)
    assert sorted(got) == sorted(expected) == list(range(FAST["count"]))
    for index in expected:
        assert np.array_equal(expected[index], got[index]), (
            f"image {index} differs from the uninterrupted run"
        )
    # The provenance says which call drew each image: the same seed groups as the uninterrupted run.
    assert [r.params["batch_seeds"] for r in resumed.records] == [
        r.params["batch_seeds"] for r in whole.records
    ]
    for index, data in saved_before.items():  # the images saved before the crash were kept, not rewritten
        assert (resumed_run.dir / resumed.records[index].file).read_bytes() == data
