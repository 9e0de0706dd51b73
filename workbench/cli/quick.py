"""``workbench quick`` (one selfie to headshots, tuning-free) and ``workbench compare`` (two runs head to head)."""

from __future__ import annotations

from typing import Literal

from workbench.cli.output import print_json, stdout_to_stderr


def quick(
    photo: str,
    preset: list[str] | None = None,
    count: int = 4,
    model: str = "tiny",
    method: Literal["ip-adapter-face", "ip-adapter-faceid"] = "ip-adapter-face",
    scale: float = 0.7,
    subject: str = "selfie",
    steps: int | None = None,
    seed: int = 0,
    evaluate: bool = True,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """One selfie in, headshots out, no training: intake of the photo, tuning-free generation, evaluation.

    The photo gets intake's checks (a rejected selfie stops here, with the advice); the headshots are drawn with
    an IP-Adapter face adapter fed the aligned face (or its face-recognition embedding); everything is tracked
    under one parent MLflow run. The summary leads with the latency: photo in -> first headshot out.

    Args:
        photo: The selfie (JPEG, PNG, HEIC...).
        preset: Style presets or looks (default: corporate).
        count: Number of headshots.
        model: Model preset (tiny, tiny-sdxl, sd15, sdxl), hub id or local diffusers folder.
        method: ip-adapter-face (CLIP image encoder on the face crop) or ip-adapter-faceid (face embedding;
            the published weights need insightface and --face-backend insightface at intake).
        scale: Strength of the face adapter (0 = off, 1 = full).
        subject: Subject id the selfie is filed under.
        steps: Denoising steps (default: the preset's; 4 on tiny).
        seed: Base seed.
        evaluate: Score the headshots after generating.
        json: Print the summary as JSON.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.demo import NOISE_NOTICE
    from workbench.quick import QuickConfig, format_quick, run_quick
    from workbench.stage import TqdmEvents
    from workbench.workspace import Workspace

    config = QuickConfig(
        subject_id=subject, model=model, identity=method, ip_adapter_scale=scale, count=count, steps=steps,
        seed=seed, evaluate=evaluate, **({"presets": preset} if preset else {}),
    )  # fmt: skip
    with stdout_to_stderr(json):
        result = run_quick(
            photo, config, workspace=Workspace.resolve(workspace), events=TqdmEvents(disable=json)
        )
    if json:
        print_json(result.to_dict())
    else:
        print(format_quick(result, NOISE_NOTICE if model.startswith("tiny") else ""))
    return 0


def compare(
    run_a: str,
    run_b: str,
    *,
    subject: str,
    n_boot: int = 1000,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Put two generation runs of one subject side by side (e.g. LoRA vs tuning-free), with CIs.

    Each run is evaluated (likeness, skin-tone shift, detectability, usable yield, each with a CI); images that
    share a seed and presets across the two runs are paired, and the paired difference B - A gets a bootstrap CI.
    Writes compare.json and compare.md under the subject's evaluations/.

    Args:
        run_a: First generation run (run name of the subject or folder).
        run_b: Second generation run (run name of the subject or folder).
        subject: The subject both runs are of.
        n_boot: Bootstrap resamples for every CI.
        json: Print the comparison as JSON.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.evaluate.compare import compare_runs
    from workbench.evaluate.config import EvalConfig
    from workbench.stage import TqdmEvents
    from workbench.workspace import Workspace

    with stdout_to_stderr(json):
        result = compare_runs(subject, run_a, run_b, EvalConfig(n_boot=n_boot), workspace=Workspace.resolve(workspace),
                              events=TqdmEvents(disable=json))  # fmt: skip
    if json:
        print_json(result.to_dict())
    else:
        print(result.markdown)
    return 0
