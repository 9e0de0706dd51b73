"""Batches: seeds, manifest, MLflow run, and resuming an interrupted batch without redoing finished images."""

from __future__ import annotations

import hashlib
import json

import mlflow
import pytest

from workbench.errors import WorkbenchError
from workbench.generate import GenerateConfig, run_generate
from workbench.stage import RecordingEvents, StageStopped
from workbench.workspace.generations import GenerationRun

FAST = {"steps": 2, "resolution": 64, "batch_size": 2}
MANIFEST_FIELDS = {
    "index", "file", "seed", "presets", "prompt", "negative_prompt", "steps", "guidance_scale", "scheduler",
    "width", "height", "model", "lora", "lora_sha256", "lora_scale", "controls", "batch_seeds", "batch_index",
    "subject", "run", "created_at", "seconds",
}  # fmt: skip


def _hashes(run_dir, records) -> dict[int, str]:
    return {r.index: hashlib.sha256((run_dir / r.file).read_bytes()).hexdigest() for r in records}


def test_batch_records_seeds_and_logs_one_mlflow_run(workspace, subject):
    config = GenerateConfig(presets=["soft-studio", "low-key"], count=5, seed=100, **FAST)
    result = run_generate(subject, config, workspace=workspace)
    assert [r.seed for r in result.records] == [100, 101, 102, 103, 104]
    assert all(MANIFEST_FIELDS <= set(r.to_dict()) for r in result.records)
    assert len({(r.params["run"], r.file) for r in result.records}) == 5 and all(
        p.is_file() for p in result.images
    )
    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["count"] == "5" and run.data.params["presets"] == "soft-studio,low-key"
    assert run.data.metrics["s_per_image"] > 0 and run.data.metrics["images_per_s"] > 0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"contact_sheet.png", "manifest.jsonl", "images", "config"} <= artifacts
    images = mlflow.MlflowClient().list_artifacts(result.run_id, "images")
    assert len(images) == 5


def test_explicit_seed_list(workspace, subject):
    config = GenerateConfig(presets=["office"], seeds=[7, 3, 99], **FAST)
    assert [r.seed for r in run_generate(subject, config, workspace=workspace).records] == [7, 3, 99]


def test_interrupted_batch_resumes_without_redoing_images(workspace, subject):
    config = GenerateConfig(presets=["rembrandt", "dark"], count=6, run_name="interrupted", **FAST)

    # A stop requested after the second saved image (the Cancel button): the run ends at the next call.
    with pytest.raises(StageStopped):
        run_generate(subject, config, workspace=workspace, events=RecordingEvents(stop_after=2))
    run_dir = workspace.generation_dir(subject, "interrupted")
    first = GenerationRun(run_dir).records()
    assert len(first) == 2
    before = _hashes(run_dir, first)
    killed = mlflow.search_runs(
        search_all_experiments=True, filter_string="attributes.run_name = 'interrupted'"
    )
    assert list(killed["status"]) == ["KILLED"]

    events = RecordingEvents()
    result = run_generate(subject, config, workspace=workspace, events=events)
    drawn = [update.item.index for update in events.updates]
    assert (result.generated, result.skipped) == (4, 2)
    assert sorted(drawn) == sorted(set(range(6)) - set(before))
    assert [r.index for r in result.records] == list(range(6))
    assert {i: h for i, h in _hashes(run_dir, result.records).items() if i in before} == before


def test_growing_count_and_missing_files_are_redrawn(workspace, subject):
    config = GenerateConfig(presets=["butterfly"], count=4, run_name="grow", **FAST)
    first = run_generate(subject, config, workspace=workspace)
    (first.out_dir / first.records[0].file).unlink()  # a deleted image is drawn again
    with open(first.out_dir / "manifest.jsonl", "a") as handle:
        handle.write('{"index": 9, "fi')  # a torn last line from a crash is ignored
    result = run_generate(subject, config.replace(count=6), workspace=workspace)
    assert (result.generated, result.skipped) == (3, 3)
    assert [r.index for r in GenerationRun(result.out_dir).records() if r.index < 6] == list(range(6))


def test_resume_with_other_settings_is_refused(workspace, subject):
    config = GenerateConfig(presets=["butterfly"], count=2, run_name="fixed", **FAST)
    run_generate(subject, config, workspace=workspace)
    with pytest.raises(WorkbenchError, match="different prompt"):
        run_generate(subject, config.replace(presets=["rembrandt"]), workspace=workspace)


def test_unknown_subject_and_preset_fail_before_loading(workspace, subject):
    with pytest.raises(WorkbenchError, match="No subject 'nobody'"):
        run_generate("nobody", GenerateConfig(**FAST), workspace=workspace)
    with pytest.raises(WorkbenchError, match="Unknown preset"):
        run_generate(subject, GenerateConfig(presets=["nope"], **FAST), workspace=workspace)


def test_run_folder_holds_the_config_that_reruns_it(workspace, subject):
    config = GenerateConfig(presets=["window-light"], count=2, run_name="again", **FAST)
    result = run_generate(subject, config, workspace=workspace)
    saved = GenerateConfig.from_yaml(result.out_dir / "generate.yaml")
    assert saved == config
    assert run_generate(subject, saved, workspace=workspace).skipped == 2
    line = (result.out_dir / "manifest.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["run"] == "again"
