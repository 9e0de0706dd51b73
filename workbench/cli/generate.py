"""``workbench generate``: a stage command (see :mod:`workbench.cli.stages`)."""

from __future__ import annotations

import argparse

from workbench.cli.stages import StageCommand

DESCRIPTION = """\
Generate a batch of studio-style variations of a subject, with provenance on every image (one MLflow run).

Presets of the same category (e.g. two lightings) are varied across the batch; looks (corporate, executive,
creative) bundle one preset per category. Every PNG carries its generation parameters and an IPTC
"trainedAlgorithmicMedia" mark. Give an existing run_name again to resume an interrupted batch.

examples:
  workbench generate --subject alice lora=workspace/subjects/alice/loras/train-1 presets=executive count=40
  workbench generate --subject alice presets=rembrandt,butterfly,dark controls=landmarks:pose:three-quarter-left
  workbench generate --subject alice --recipe workspace/subjects/alice/generations/gen-1/generate.yaml seed=7
"""


def _report(result, args: argparse.Namespace) -> int:
    if args.json:
        return 0
    rate = result.timings.get("s_per_image")
    speed = f" ({rate:.3f} s/image)" if rate else ""
    print(
        f"{result.generated} image(s) generated, {result.skipped} kept from before{speed}: {result.out_dir}\n"
        f"contact sheet: {result.contact_sheet}\nMLflow run {result.run_id}"
    )
    return 0


COMMAND = StageCommand(
    stage="generate",
    description=DESCRIPTION,
    report=_report,
    subject_help="Subject id in the workspace (its token and class word go into the prompt).",
    recipe_help="A generate YAML (e.g. a run's generate.yaml); KEY=VALUE overrides it.",
)
