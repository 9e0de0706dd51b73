"""Evaluate tab: a suite fills the measurements; the report as a headline, per-group CIs, plots and a ranking."""

from __future__ import annotations

import gradio as gr

from workbench.ui import choices
from workbench.ui.context import AppContext
from workbench.ui.forms import EVAL_FIELDS
from workbench.ui.handlers import evaluate as E
from workbench.ui.handlers.common import message_frame
from workbench.ui.jobs import watch
from workbench.ui.tabs.common import GPU, cancel, feed, shown


class EvaluateTab:
    title, tab_id = "Evaluate", "evaluate"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        suites = choices.suites()
        suite = E.DEFAULT_SUITE if E.DEFAULT_SUITE in suites else None
        with gr.Row():
            self.run = gr.Dropdown(label="Generation run", choices=[], elem_id="eval-run")
            self.suite = gr.Dropdown(label="Suite (fills the measurements)", choices=suites, value=suite,
                                     elem_id="eval-suite")  # fmt: skip
            metrics = gr.CheckboxGroup(label="Measurements", choices=choices.metrics(),
                                       value=E.fill(suite)["metrics"], elem_id="eval-metrics")  # fmt: skip
        self.fields = dict(zip(EVAL_FIELDS, (metrics,), strict=True))
        with gr.Row():
            self.evaluate = gr.Button("Evaluate", variant="primary", elem_id="evaluate-btn")
            self.stop = gr.Button("Cancel", variant="stop", elem_id="evaluate-cancel")
        self.summary = gr.Markdown(E.NOT_STARTED, elem_id="eval-summary")
        self.groups = gr.Dataframe(message_frame(*E.NO_GROUPS), label="Per group, with 95% CIs", interactive=False,
                                   elem_id="group-table")  # fmt: skip
        self.plots = gr.Gallery(label="Plots (after a run)", columns=3, elem_id="eval-plots")
        self.ranked = gr.Gallery(
            label="Ranked: best first, ✓ = usable (after a run)", columns=5, elem_id="ranked"
        )

    def wire(self, picker: gr.Dropdown) -> gr.events.Dependency:
        self.suite.change(self.on_suite, inputs=self.suite, outputs=self.fields["metrics"])
        event = self.evaluate.click(self.on_evaluate, inputs=[picker, self.run, self.suite, *self.fields.values()],
                                    outputs=[self.summary, self.groups, self.plots, self.ranked], **GPU)  # fmt: skip
        self.stop.click(self.on_cancel, queue=False)
        return event

    def subject_outputs(self) -> list:
        return [self.run]

    @shown
    def on_subject(self, selected: str | None, request: gr.Request):
        runs = E.generation_runs(self.ctx.workspace, self.ctx.viewer(request), selected)
        return gr.Dropdown(choices=runs, value=runs[0][1] if runs else None)

    @shown
    def on_suite(self, suite: str | None):
        return E.fill(suite)["metrics"]

    @shown
    def on_evaluate(self, subject: str | None, run: str | None, suite: str | None, metrics: list[str] | None,
                    request: gr.Request, progress=gr.Progress()):  # fmt: skip
        viewer = self.ctx.viewer(request)
        job = E.start_eval(self.ctx.workspace, viewer, subject, run, suite, {"metrics": metrics or []})
        for tick in watch(self.ctx.jobs.start(viewer.key, "eval", job.call)):
            feed(progress, tick)
            shown_now = E.view(self.ctx.workspace, job, tick, self.ctx.publish)
            plots = shown_now.plots if tick.done else gr.skip()
            ranked = shown_now.ranked if tick.done else gr.skip()
            yield shown_now.status, shown_now.groups, plots, ranked

    @shown
    def on_cancel(self, request: gr.Request):
        cancel(self.ctx.jobs, self.ctx.viewer(request).key, "eval")
