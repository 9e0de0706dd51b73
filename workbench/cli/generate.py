"""``workbench generate``: a batch of studio-style variations of one subject, with provenance on every image."""

from __future__ import annotations


def generate(
    *,
    subject: str,
    lora: str | None = None,
    preset: list[str] | None = None,
    count: int = 40,
    model: str = "tiny",
    seed: int = 0,
    steps: int | None = None,
    guidance_scale: float | None = None,
    lora_scale: float = 1.0,
    scheduler: str | None = None,
    resolution: int | None = None,
    control: list[str] | None = None,
    controlnet_model: list[str] | None = None,
    batch_size: int = 4,
    run_name: str | None = None,
    recipe: str | None = None,
    styles: list[str] | None = None,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Generate COUNT variations of a subject in the chosen style presets, tracked as one MLflow run.

    Presets of the same category (e.g. two lightings) are varied across the batch; looks (corporate, executive,
    creative) bundle one preset per category. Every PNG carries its generation parameters and an IPTC
    "trainedAlgorithmicMedia" mark. Rerun with the same --run-name to resume an interrupted batch.

    Examples:
      workbench generate --subject alice --lora workspace/subjects/alice/loras/train-1 --preset executive --count 40
      workbench generate --subject alice --preset rembrandt butterfly dark --control landmarks:pose:three-quarter-left

    Args:
      subject: Subject id in the workspace.
      lora: LoRA .safetensors file, a folder holding one, or mlflow:<run_id>.
      preset: Style presets / looks by name (default: corporate). Users add their own as YAML (--styles).
      count: Number of images.
      model: Preset (tiny, tiny-sdxl, sd15, sdxl), hub id or local diffusers folder.
      seed: Base seed; image i uses seed + i.
      steps: Denoising steps (default: the presets', else 30).
      guidance_scale: Classifier-free guidance (default: the presets', else 7.0 / SDXL 6.0).
      lora_scale: LoRA strength.
      scheduler: ddim, dpmpp-2m, dpmpp-2m-karras, euler, euler-a or unipc (default: the presets', else the model's).
      resolution: Square output size in pixels (default: the model's native size).
      control: ControlNets as TYPE:REFERENCE[:scale[:start[:end]]], TYPE in landmarks, canny, depth, openpose;
        REFERENCE an image or pose:NAME from the gallery (front, three-quarter-left, three-quarter-right,
        tilt-left, tilt-right, chin-down).
      controlnet_model: ControlNet weights per type as TYPE=HUB_ID_OR_FOLDER (or TYPE=tiny).
      batch_size: Images per pipeline call.
      run_name: Name of the run folder; an existing one is resumed, skipping finished images.
      recipe: A generate YAML (e.g. a run's generate.yaml); the flags given override it.
      styles: Extra folders of style preset YAML files.
      json: Print the result as JSON (run folder, MLflow run id, one entry per image, timings).
      workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    import inspect
    import json as json_lib

    from workbench.generate import GenerateConfig, generate_batch
    from workbench.workspace import Workspace

    overrides = {
        "subject": subject, "lora": lora, "presets": preset, "count": count, "model": model, "seed": seed,
        "steps": steps, "guidance_scale": guidance_scale, "lora_scale": lora_scale, "scheduler": scheduler,
        "resolution": resolution, "controls": control, "controlnet_models": controlnet_model,
        "batch_size": batch_size, "run_name": run_name, "style_dirs": styles,
    }  # fmt: skip
    if recipe:
        # A flag left at its default must not override the recipe's value.
        defaults = {k: v.default for k, v in inspect.signature(generate).parameters.items()}
        cli_names = {"presets": "preset", "controls": "control", "controlnet_models": "controlnet_model",
                     "style_dirs": "styles"}  # fmt: skip
        overrides = {k: v for k, v in overrides.items() if v != defaults.get(cli_names.get(k, k))}
    base = GenerateConfig.from_yaml(recipe) if recipe else GenerateConfig(subject=subject)
    config = base.replace(**overrides)
    result = generate_batch(config, Workspace.resolve(workspace), progress=not json)
    summary = {
        "run_dir": str(result.run_dir),
        "mlflow_run_id": result.mlflow_run_id,
        "generated": result.generated,
        "skipped": result.skipped,
        "contact_sheet": str(result.contact_sheet),
        "timings": result.timings,
        "images": [
            {
                "path": str(result.run_dir / r["file"]),
                "index": r["index"],
                "seed": r["seed"],
                "presets": r["presets"],
            }
            for r in result.records
        ],
    }
    if json:
        print(json_lib.dumps(summary, indent=2))
    else:
        rate = result.timings.get("s_per_image")
        speed = f" ({rate:.3f} s/image)" if rate else ""
        print(
            f"{result.generated} image(s) generated, {result.skipped} kept from before{speed}: {result.run_dir}\n"
            f"contact sheet: {result.contact_sheet}"
        )
    return 0
