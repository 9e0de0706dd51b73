"""``workbench study``."""

from __future__ import annotations

from workbench.cli.output import print_json, stdout_to_stderr


def study(
    file: str,
    address: str | None = None,
    num_cpus: int | None = None,
    json: bool = False,
    workspace: str | None = None,
) -> int:
    """Run a study: every identity x method x seed as a Ray task (intake -> train -> generate -> evaluate).

    The study file (see experiments/studies/) names the test set, the methods and the seeds. Cells that
    already FINISHED in MLflow are skipped, so re-running the same command resumes a study. The report (per
    method x group, CIs over identities) is logged to the study's parent run.

    Args:
        file: A built-in study by name (ladder-two-loras) or a study YAML file (see experiments/studies/).
        address: Ray cluster to run on (default: $RAY_ADDRESS, else a local Ray started for this command).
        num_cpus: CPUs of the local Ray (default: all).
        json: Print the result (report included) as JSON.
        workspace: Workspace folder (default: $WORKBENCH_WORKSPACE or ./workspace).
    """
    from workbench.study import StudyConfig, run_study
    from workbench.workspace import Workspace

    config = StudyConfig.from_yaml(file)
    with stdout_to_stderr(json):
        result = run_study(config, Workspace.resolve(workspace), address=address, num_cpus=num_cpus,
                           progress=not json)  # fmt: skip
    if json:
        print_json(result)
    else:
        print(f"study run {result.run_id} (study id {result.study_id}): {len(result.cells)} cells finished "
              f"({result.ran} now, {result.skipped} earlier), {len(result.failed)} failed")  # fmt: skip
        for fail in result.failed:
            print(f"  FAILED {fail['identity']} / {fail['method']}: {fail['error']}")
        for name, path in result.files.items():
            print(f"  {name:<14} {path}")
    return 1 if result.failed else 0
