"""Batches: seeds, manifest, MLflow run, and resuming an interrupted batch without redoing finished images."""

from __future__ import annotations

import hashlib
import json

import mlflow
import pytest

from workbench.errors import WorkbenchError
from workbench.generate import GenerateConfig, generate_batch, read_manifest

FAST = {"steps": 2, "resolution": 64, "batch_size": 2}
MANIFEST_FIELDS = {
    "index", "file", "seed", "presets", "prompt", "negative_prompt", "steps", "guidance_scale", "scheduler",
    "width", "height", "model", "lora", "lora_sha256", "lora_scale", "controls", "batch_seeds", "batch_index",
    "subject", "run", "created_at", "seconds",
}  # fmt: skip


class Interrupt(Exception):
    pass


def _hashes(run_dir, records) -> dict[int, str]:
    return {r["index"]: hashlib.sha256((run_dir / r["file"]).read_bytes()).hexdigest() for r in records}


def test_batch_records_seeds_and_logs_one_mlflow_run(workspace, subject):
    config = GenerateConfig(subject=subject, presets=["soft-studio", "low-key"], count=5, seed=100, **FAST)
    result = generate_batch(config, workspace, progress=False)
    assert [r["seed"] for r in result.records] == [100, 101, 102, 103, 104]
    assert all(MANIFEST_FIELDS <= set(r) for r in result.records)
    assert len({(r["run"], r["file"]) for r in result.records}) == 5 and all(
        p.is_file() for p in result.images
    )
    run = mlflow.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["count"] == "5" and run.data.params["presets"] == "soft-studio,low-key"
    assert run.data.metrics["s_per_image"] > 0 and run.data.metrics["images_per_s"] > 0
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.mlflow_run_id)}
    assert {"contact_sheet.png", "manifest.jsonl", "images", "config"} <= artifacts
    images = mlflow.MlflowClient().list_artifacts(result.mlflow_run_id, "images")
    assert len(images) == 5


def test_explicit_seed_list(workspace, subject):
    config = GenerateConfig(subject=subject, presets=["office"], seeds=[7, 3, 99], **FAST)
    assert [r["seed"] for r in generate_batch(config, workspace, progress=False).records] == [7, 3, 99]


def test_interrupted_batch_resumes_without_redoing_images(workspace, subject):
    config = GenerateConfig(
        subject=subject, presets=["rembrandt", "dark"], count=6, run_name="interrupted", **FAST
    )

    def stop_after_two(record):
        if record["index"] >= 1 and len(read_manifest(workspace.generation_dir(subject, "interrupted"))) == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        generate_batch(config, workspace, progress=False, on_image=stop_after_two)
    run_dir = workspace.generation_dir(subject, "interrupted")
    first = read_manifest(run_dir)
    assert len(first) == 2
    before = _hashes(run_dir, first)
    killed = mlflow.search_runs(
        search_all_experiments=True, filter_string="attributes.run_name = 'interrupted'"
    )
    assert list(killed["status"]) == ["FAILED"]

    drawn = []
    result = generate_batch(config, workspace, progress=False, on_image=lambda r: drawn.append(r["index"]))
    assert (result.generated, result.skipped) == (4, 2)
    assert sorted(drawn) == sorted(set(range(6)) - set(before))
    assert [r["index"] for r in result.records] == list(range(6))
    assert {i: h for i, h in _hashes(run_dir, result.records).items() if i in before} == before


def test_growing_count_and_missing_files_are_redrawn(workspace, subject):
    config = GenerateConfig(subject=subject, presets=["butterfly"], count=4, run_name="grow", **FAST)
    first = generate_batch(config, workspace, progress=False)
    (first.run_dir / first.records[0]["file"]).unlink()  # a deleted image is drawn again
    with open(first.run_dir / "manifest.jsonl", "a") as handle:
        handle.write('{"index": 9, "fi')  # a torn last line from a crash is ignored
    result = generate_batch(config.replace(count=6), workspace, progress=False)
    assert (result.generated, result.skipped) == (3, 3)
    assert [r["index"] for r in read_manifest(result.run_dir) if r["index"] < 6] == list(range(6))


def test_resume_with_other_settings_is_refused(workspace, subject):
    config = GenerateConfig(subject=subject, presets=["butterfly"], count=2, run_name="fixed", **FAST)
    generate_batch(config, workspace, progress=False)
    with pytest.raises(WorkbenchError, match="different prompt"):
        generate_batch(config.replace(presets=["rembrandt"]), workspace, progress=False)


def test_unknown_subject_and_preset_fail_before_loading(workspace, subject):
    with pytest.raises(WorkbenchError, match="No subject 'nobody'"):
        generate_batch(GenerateConfig(subject="nobody", **FAST), workspace, progress=False)
    with pytest.raises(WorkbenchError, match="Unknown preset"):
        generate_batch(GenerateConfig(subject=subject, presets=["nope"], **FAST), workspace, progress=False)


def test_run_folder_holds_the_config_that_reruns_it(workspace, subject):
    config = GenerateConfig(subject=subject, presets=["window-light"], count=2, run_name="again", **FAST)
    result = generate_batch(config, workspace, progress=False)
    saved = GenerateConfig.from_yaml(result.run_dir / "generate.yaml")
    assert saved == config
    assert generate_batch(saved, workspace, progress=False).skipped == 2
    line = (result.run_dir / "manifest.jsonl").read_text().splitlines()[0]
    assert json.loads(line)["run"] == "again"
