"""The Gradio app: the CLI's pipeline in a browser tab, one tab per stage, plus runs and a blind test.

``build_app(workspace)`` returns a ``gr.Blocks``; nothing launches on import and nothing lives at module level.
Each tab (:mod:`workbench.ui.tabs`) lays out its components and binds them to plain handlers
(:mod:`workbench.ui.handlers`); long stages run as jobs watched by one generator (:mod:`workbench.ui.jobs`).
A ``WorkbenchError`` is shown as the same sentence the CLI prints.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402

from workbench.ui.context import AppContext  # noqa: E402
from workbench.ui.handlers import subject as S  # noqa: E402
from workbench.ui.publish import use_workspace_cache  # noqa: E402
from workbench.ui.tabs.blindtest import BlindTestTab  # noqa: E402
from workbench.ui.tabs.evaluate import EvaluateTab  # noqa: E402
from workbench.ui.tabs.generate import GenerateTab  # noqa: E402
from workbench.ui.tabs.quick import QuickTab  # noqa: E402
from workbench.ui.tabs.runs import RunsTab  # noqa: E402
from workbench.ui.tabs.subject import SubjectTab  # noqa: E402
from workbench.ui.tabs.train import TrainTab  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

# System fonts only: the default theme would fetch Google Fonts, which an offline machine cannot reach.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO = ["ui-monospace", "monospace"]


def launch_options(workspace: Workspace) -> dict[str, Any]:
    """``launch()`` settings every entry point uses: upload limit, offline theme, no API page."""
    return {
        "max_file_size": f"{S.MAX_PHOTO_MB}mb",
        "theme": gr.themes.Default(font=FONTS, font_mono=MONO),
        "footer_links": [],
        "show_error": True,
    }


def mode_line(ctx: AppContext) -> str:
    if ctx.logins and not ctx.operator:
        return "*Signed in: you see the subjects you created.*"
    if ctx.logins:
        return "*Operator mode: every subject in the workspace is shown.*"
    return "*Local mode: every subject in this workspace is listed, including those made with the CLI or a notebook.*"


def build_app(
    workspace: Workspace,
    *,
    logins: bool = False,
    operator_sees_all: bool = False,
    title: str = "Headshot Workbench",
) -> gr.Blocks:
    """The whole app for ``workspace``. ``logins``: started with ``--auth``, so each login sees its own subjects
    (``operator_sees_all``: every subject). Without logins (loopback) every subject on disk is listed."""
    use_workspace_cache(workspace)  # uploads and served copies inside the workspace, so `forget` covers them
    ctx = AppContext(workspace, logins=logins, operator=operator_sees_all)
    subject_tab, train, generate, evaluate = (
        SubjectTab(ctx),
        TrainTab(ctx),
        GenerateTab(ctx),
        EvaluateTab(ctx),
    )
    runs, blind, quick = RunsTab(ctx), BlindTestTab(ctx), QuickTab(ctx)
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}\nPhotos in → LoRA trained → headshots generated → scored, every step tracked in "
                    f"MLflow. {mode_line(ctx)}")  # fmt: skip
        with gr.Row():
            picker = gr.Dropdown(label="Subject", choices=[], value=None, scale=3, elem_id="subject-picker")
            refresh = gr.Button("Refresh", scale=0, size="sm", elem_id="subject-refresh")
        tabs = {}
        for tab in (subject_tab, quick, train, generate, evaluate, runs, blind):
            with gr.Tab(tab.title, id=tab.tab_id, elem_id=f"tab-{tab.tab_id}") as tabs[tab.tab_id]:
                tab.layout()

        # What depends on the subject: refreshed when it changes and after every job that adds runs.
        followers = [(t.on_subject, t.subject_outputs()) for t in (subject_tab, generate, evaluate)]
        app.load(
            subject_tab.on_load, outputs=picker
        )  # from disk: a reload, or a subject made by the CLI, shows
        refresh.click(subject_tab.on_refresh, inputs=picker, outputs=picker)
        for fn, outputs in followers:
            picker.change(fn, inputs=picker, outputs=outputs)
        subject_tab.wire(picker)
        for event in (quick.wire(picker), train.wire(picker), generate.wire(picker), evaluate.wire(picker)):
            for fn, outputs in followers:
                event.then(fn, inputs=picker, outputs=outputs)
        runs.wire(tabs["runs"])
        blind.wire(picker)
    app.queue(default_concurrency_limit=4)
    return app
