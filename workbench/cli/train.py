"""``workbench train``: a thin call into :mod:`workbench.train` (heavy imports happen inside the function)."""

from __future__ import annotations

import json as _json


def train(
    *,
    subject: str,
    model: str | None = None,
    recipe: str | None = None,
    overrides: list[str] = [],  # noqa: B006 - read only; the CLI machinery maps this name to KEY=VALUE args
    resume: bool = False,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Train a DreamBooth-LoRA of a subject on its intake dataset (tracked in MLflow, registered as a model).

    Examples:
      workbench train --subject alice --model tiny max_train_steps=50
      workbench train --subject alice --model sdxl --recipe experiments/train/sdxl-faces.yaml rank=32
      workbench train --subject alice --resume
      accelerate launch --multi_gpu --num_processes 2 -m workbench.train --subject alice --model sdxl

    Args:
      subject: Subject id (its intake dataset is subjects/<id>/dataset/).
      model: Base model: preset (tiny, tiny-sdxl, sd15, sdxl), hub id or diffusers folder (default: the recipe's, else tiny).
      recipe: YAML recipe of TrainConfig fields (see experiments/train/).
      overrides: TrainConfig fields as KEY=VALUE, applied last (e.g. rank=32 learning_rate=5e-5).
      resume: Continue the subject's newest unfinished run from its last checkpoint (with its own config).
      json: Print the result as JSON.
      workspace: Workspace folder (default: $WORKBENCH_WORKSPACE, else ./workspace).
    """
    from workbench.train import TrainConfig, parse_overrides, train_lora
    from workbench.train.run import CONFIG_FILE, find_resumable
    from workbench.workspace import Workspace

    ws = Workspace.resolve(workspace)
    if resume:
        config = TrainConfig.from_yaml(find_resumable(ws, subject) / CONFIG_FILE)
    else:
        config = TrainConfig.from_yaml(recipe) if recipe else TrainConfig()
    # The config types the values ("1e-4" -> float, "a,b" -> list); "null" clears a field.
    config = config.with_overrides(
        {**({"model": model} if model else {}), **parse_overrides(list(overrides))}
    )
    result = train_lora(ws, subject, config, resume=resume)
    if not result.lora_file:  # a secondary process under accelerate: the main one reports
        return 0
    if json:
        print(_json.dumps(result.to_dict(), indent=2))
    else:
        print(
            f"trained {result.steps} steps in {result.seconds:.1f} s ({result.steps_per_second:.2f} steps/s), "
            f"final loss {result.final_loss:.4f}\nLoRA: {result.lora_file}"
            + (f"\nkohya: {result.kohya_file}" if result.kohya_file else "")
            + (
                f"\nregistered model '{subject}' version {result.model_version}"
                if result.model_version
                else ""
            )
        )
    return 0
