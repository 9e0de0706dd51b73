"""``workbench demo``."""

from __future__ import annotations

from workbench.cli.output import print_json, stdout_to_stderr


def demo(
    model: str = "tiny",
    steps: int = 30,
    images_per_preset: int = 2,
    seed: int = 0,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Run the whole flow offline: photos in, a LoRA trained, headshots generated, scores out, all in MLflow.

    Uses a real portrait that ships with scikit-image as the subject and, by default, the 'tiny' random-weight
    preset, so it needs no model download; the summary says where every run and file is.

    Args:
        model: Model preset (tiny, tiny-sdxl, sd15, sdxl), hub id or local diffusers folder.
        steps: LoRA training steps.
        images_per_preset: Images generated for each of the two style presets.
        seed: Seed of training and generation.
        json: Print the summary (run ids, artifact paths, metrics) as JSON.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.demo import DemoConfig, format_summary, run_demo
    from workbench.stage import TqdmEvents
    from workbench.workspace import Workspace

    config = DemoConfig(model=model, train_steps=steps, images_per_preset=images_per_preset, seed=seed)
    with stdout_to_stderr(json):  # only the summary goes to stdout under --json
        summary = run_demo(config, Workspace.resolve(workspace), TqdmEvents(disable=json))
    if json:
        print_json(summary)
    else:
        print(format_summary(summary))
    return 0
