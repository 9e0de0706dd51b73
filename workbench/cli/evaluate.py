"""``workbench eval``: a stage command (see :mod:`workbench.cli.stages`); the suite is its recipe."""

from __future__ import annotations

import argparse

from workbench.cli.stages import StageCommand

DESCRIPTION = """\
Evaluate generated headshots (likeness, skin tone, AI-detectability, usable yield) or a test set.

The suite is this command's recipe (--suite and --recipe are the same flag; default: the 'default' suite);
KEY=VALUE overrides its options. The report (JSON, Markdown, HTML, plots) is written under the workspace and
logged to MLflow. Exit status 1 when a threshold check of the suite fails.

examples:
  workbench eval --subject alice                                  (alice's newest generation run)
  workbench eval --subject alice --images gen-20260101-120000     (one of alice's generation runs)
  workbench eval --subject alice --images ./my_outputs n_boot=1000
  workbench eval --suite skin-tone-ladder                         (built-in counterfactual ladder)
  workbench eval --suite default testset=./my_labelled_faces --json
"""

# The headline metrics the summary prints (every metric is in the report and in --json).
HEADLINE = (
    "likeness.verification_rate", "skin.lightening_rate", "skin.delta_e2000", "skin.mst_abs_error",
    "detect.accuracy", "detect.auc", "ranking.usable_yield", "timing.faces_per_second",
)  # fmt: skip


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--images",
        metavar="RUN_OR_FOLDER",
        help="A generation run of the subject (its name) or a folder of images; default: the subject's newest run.",
    )


def _base_config(config_cls: type, args: argparse.Namespace, workspace) -> object:
    from workbench.evaluate import load_suite

    return load_suite(args.recipe or "default")


def _report(result, args: argparse.Namespace) -> int:
    if not args.json:
        if result.files is not None:
            print(f"Report: {result.files.markdown}")
        for name in HEADLINE:
            if name in result.metrics:
                lo, hi = result.metrics.get(f"{name}.lo"), result.metrics.get(f"{name}.hi")
                ci = f"  [{lo:.3f}, {hi:.3f}]" if lo is not None and hi is not None else ""
                print(f"  {name:32s} {result.metrics[name]:.3f}{ci}")
        for check in result.checks:
            print(f"  check {check.metric}: {'pass' if check.passed else 'FAIL'} ({check.value})")
        print(f"MLflow run {result.run_id}")
    return 0 if result.passed else 1


COMMAND = StageCommand(
    stage="eval",
    description=DESCRIPTION,
    report=_report,
    subject_help="Subject whose own photos are the reference; not needed for a test-set suite.",
    subject_required=False,
    recipe_flags=("--suite", "--recipe"),
    recipe_help="The suite: a name (default, detectability, skin-tone-ladder) or a suite YAML; default: default.",
    add_arguments=_add_arguments,
    call_kwargs=lambda args, inputs: {"images": args.images},
    base_config=_base_config,
)
