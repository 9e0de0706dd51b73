"""``workbench train``: a stage command (see :mod:`workbench.cli.stages`); heavy imports happen when it runs."""

from __future__ import annotations

import argparse

from workbench.cli.stages import StageCommand
from workbench.errors import WorkbenchError

DESCRIPTION = """\
Train a DreamBooth-LoRA of a subject on its intake dataset (tracked in MLflow, registered as a model).

examples:
  workbench train --subject alice model=tiny max_train_steps=50
  workbench train --subject alice --recipe sdxl-faces rank=32 learning_rate=5e-5
  workbench train --subject alice --resume
  accelerate launch --multi_gpu --num_processes 2 -m workbench.train --subject alice model=sdxl

Recipes are YAML files of the options below: a built-in name (sd15-faces, sdxl-faces, sdxl-fast, tiny-demo),
or a path such as a run's config/train.yaml artifact.
"""


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="Continue the subject's newest unfinished run from its last checkpoint, with that run's own "
        "config (KEY=VALUE still applies on top).",
    )


def _base_config(config_cls: type, args: argparse.Namespace, workspace) -> object:
    if not args.resume:
        return config_cls.from_yaml(args.recipe) if args.recipe else config_cls()
    if args.recipe:
        raise WorkbenchError(
            "--resume continues a run with its own config: drop --recipe (KEY=VALUE still applies)."
        )
    from workbench.workspace.loras import find_resumable

    return config_cls.from_yaml(find_resumable(workspace, args.subject).config_file)


def _report(result, args: argparse.Namespace) -> int:
    if args.json:
        return 0
    print(
        f"trained {result.steps} steps in {result.seconds:.1f} s ({result.steps_per_second:.2f} steps/s), "
        f"final loss {result.final_loss:.4f}\nLoRA: {result.lora_file}"
    )
    if result.kohya_file:
        print(f"kohya: {result.kohya_file}")
    if result.model_version:
        print(f"registered model '{args.subject}' version {result.model_version}")
    print(f"MLflow run {result.run_id}")
    return 0


COMMAND = StageCommand(
    stage="train",
    description=DESCRIPTION,
    report=_report,
    subject_help="Subject id (its intake dataset is subjects/<ID>/dataset/).",
    add_arguments=_add_arguments,
    call_kwargs=lambda args, inputs: {"resume": args.resume},
    base_config=_base_config,
)
