"""The Generate tab: a LoRA fills the widgets (its base model); only what the user changed overrides the config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench.errors import WorkbenchError
from workbench.stage import StageEvents
from workbench.ui import forms
from workbench.ui.choices import NO_LORA
from workbench.ui.handlers.common import stopped_text
from workbench.ui.jobs import Tick
from workbench.ui.publish import Publisher
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

NOT_STARTED = "No images yet: choose presets and press Generate."


def loras(workspace: Workspace, viewer: Viewer, subject: str | None) -> list[tuple[str, str]]:
    """(label, weights file) of the subject's finished LoRAs, newest first."""
    from workbench.workspace.loras import lora_runs

    if not subject or not viewer.can_see(workspace, subject):
        return []
    return [(f"{run.name} ({_trained_model(run.config_file) or '?'})", str(run.weights))
            for run in lora_runs(workspace, subject) if run.weights.is_file()]  # fmt: skip


def _trained_model(config_file: Path) -> str | None:
    if not config_file.is_file():
        return None
    return (yaml.safe_load(config_file.read_text()) or {}).get("model")


def base_config(lora: str | None) -> Any:
    """What generation does with nothing changed: the defaults, the LoRA, and the model it was trained on."""
    from workbench.generate import GenerateConfig
    from workbench.workspace.loras import CONFIG_FILE

    if not lora or lora == NO_LORA:
        return GenerateConfig()
    model = _trained_model(Path(lora).parent / CONFIG_FILE)
    return GenerateConfig(lora=lora, **({"model": model} if model else {}))


def fill(lora: str | None) -> dict[str, Any]:
    """The values the Generate tab's widgets show for ``lora`` (by field name, see ``forms.GENERATE_FIELDS``)."""
    return forms.form_values(base_config(lora), forms.GENERATE_FIELDS)


def control_specs(control: str | None, reference: str | None, scale: float) -> list[str]:
    if not control or control == "none":
        return []
    if not reference:
        raise WorkbenchError(f"The {control} ControlNet needs a reference image: add one, or choose 'none'.")
    return [f"{control}:{reference}:{float(scale):g}"]


@dataclass(frozen=True)
class GenerateJob:
    subject: str
    config: Any  # GenerateConfig, with its run name set: the tab knows the folder before the run starts
    run_dir: Path
    call: Callable[[StageEvents], Any]


def start_generate(
    workspace: Workspace, viewer: Viewer, subject: str | None, lora: str | None, values: dict[str, Any],
    controls: list[str],
) -> GenerateJob:  # fmt: skip
    from workbench.generate import run_generate
    from workbench.workspace.generations import generation_run

    subject = viewer.require(workspace, subject)
    if lora and lora != NO_LORA and lora not in dict(loras(workspace, viewer, subject)).values():
        raise WorkbenchError("That LoRA does not belong to this subject: pick one from the list.")
    changes = {"controls": controls, "run_name": workspace.new_run_name("generate")}
    config = forms.apply(base_config(lora), values, changes)
    run_dir = generation_run(workspace, subject, config.run_name).dir
    call = lambda events: run_generate(subject, config, workspace=workspace, events=events)  # noqa: E731
    return GenerateJob(subject, config, run_dir, call)


def caption(record: Any) -> str:
    """An image's label: seed, presets and the sampling settings that made it."""
    return (
        f"seed {record.seed} · {'/'.join(record.presets)} · {record.steps} steps · "
        f"CFG {record.guidance_scale} · {record.scheduler or ''}"
    )


@dataclass(frozen=True)
class GenerateView:
    status: str
    images: list[tuple[str, str]]  # (file, caption) for the gallery
    download: str | None = None


def view(workspace: Workspace, job: GenerateJob, tick: Tick, publish: Publisher) -> GenerateView:
    """What the tab shows at one tick: the images saved so far; at the end the batch and a zip of it."""
    shown = [(publish(job.run_dir / r.file), caption(r)) for r in tick.items]
    if not tick.done:
        total = tick.progress.total if tick.progress else job.config.n_images
        return GenerateView(f"Generating {len(tick.items)} of {total}…", shown)
    if tick.stopped:
        after = "Finished images are kept; generating with the same run name resumes the batch."
        return GenerateView(stopped_text(workspace, tick, "Generation", after), shown)
    result = tick.outcome()
    shown = [(publish(result.out_dir / r.file), caption(r)) for r in result.records]
    text = (
        f"{len(result.records)} images in `{result.out_dir}` ({result.seconds:.1f} s sampling, "
        f"MLflow run `{result.run_id}`)."
    )
    return GenerateView(text, shown, publish.zip_files(result.images, result.run_name))
