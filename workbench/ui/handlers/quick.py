"""The One selfie tab: one photo -> tuning-free headshots, over :func:`workbench.quick.run_quick`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.stage import StageEvents
from workbench.ui.handlers.common import StageJob, stopped_text
from workbench.ui.handlers.subject import check_uploads
from workbench.ui.jobs import Tick
from workbench.ui.publish import Publisher, discard_uploads
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

NOT_STARTED = (
    "Upload one clear, front-facing selfie and press Make headshots: no training, about a minute on CPU."
)
METHODS = ("ip-adapter-face", "ip-adapter-faceid")


def start_quick(
    workspace: Workspace, viewer: Viewer, name: str | None, photo: str | None, model: str, method: str,
    presets: list[str] | None, count: int,
) -> StageJob:  # fmt: skip
    """Check the upload and the name (nothing written yet); the call runs the whole one-selfie flow."""
    from workbench.quick import QuickConfig, run_quick

    if not photo:
        raise WorkbenchError("Upload one selfie first (a clear, front-facing photo of one person).")
    paths = check_uploads([photo], max_photos=1)
    subject = viewer.subject_id(name or "selfie")
    viewer.check_free(workspace, subject)
    if method not in METHODS:
        raise WorkbenchError(f"Unknown method '{method}': choose {' or '.join(METHODS)}.")
    config = QuickConfig(subject_id=subject, model=model or "tiny", identity=method, count=int(count),
                         **({"presets": list(presets)} if presets else {}))  # fmt: skip

    def call(events: StageEvents) -> Any:
        try:
            return run_quick(paths[0], config, workspace=workspace, events=events)
        finally:  # intake keeps its own copy of the photo; the upload must not outlive it
            discard_uploads(paths, workspace)
            if subject in workspace.subjects():
                viewer.claim(workspace, subject)

    return StageJob(subject, config, call)


@dataclass(frozen=True)
class QuickView:
    status: str
    images: list[tuple[str, str]]
    download: str | None = None


def view(workspace: Workspace, job: StageJob, tick: Tick, publish: Publisher) -> QuickView:
    """The headshots saved so far (each as soon as it is on disk); at the end the latency and the scores."""
    shown = [(publish(workspace.generation_dir(job.subject, r.params["run"]) / r.file), f"seed {r.seed}")
             for r in tick.items]  # fmt: skip
    if not tick.done:
        stage = tick.progress.stage if tick.progress else "intake"
        return QuickView(f"{stage}: {len(tick.items)} of {job.config.count} headshots…", shown)
    if tick.stopped:
        return QuickView(
            stopped_text(workspace, tick, "The one-selfie run", "Finished headshots are kept."), shown
        )
    result = tick.outcome()
    shown = [(publish(p), f"headshot {i + 1}") for i, p in enumerate(result.images)]
    after = f", then {result.per_image_s:.2f} s each" if result.per_image_s is not None else ""
    usable = result.metrics.get("eval.ranking.usable_yield")
    scores = f" Usable yield {usable:.0%}." if usable is not None else ""
    text = (f"{len(result.images)} headshots of `{result.subject}`: first one {result.first_image_s:.1f} s after the "
            f"photo{after}.{scores} Parent MLflow run `{result.run_id}`.")  # fmt: skip
    return QuickView(text, shown, publish.zip_files(result.images, result.out_dir.name))
