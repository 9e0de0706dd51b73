"""Runs tab: the MLflow runs of the subjects one may see, with their final state, and a side-by-side compare."""

from __future__ import annotations

import gradio as gr

from workbench.ui import runs as R
from workbench.ui.context import AppContext
from workbench.ui.tabs.common import shown


class RunsTab:
    title, tab_id = "Runs", "runs"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        self.refresh = gr.Button("Refresh runs", elem_id="runs-refresh")
        self.table = gr.Dataframe(R.runs_frame([]), label="MLflow runs (newest first)", interactive=False,
                                  elem_id="runs-table")  # fmt: skip
        self.pick = gr.Dropdown(label="Compare runs", multiselect=True, choices=[], elem_id="compare-pick")
        self.compare = gr.Dataframe(R.compare_frame([]), label="Params and metrics side by side (differences first)",
                                    interactive=False, wrap=True, elem_id="compare-table")  # fmt: skip
        self.mlflow = gr.Markdown(elem_id="mlflow-cmd")

    def wire(self, tab: gr.Tab) -> None:
        outputs = [self.table, self.pick, self.mlflow]
        self.refresh.click(self.on_refresh, outputs=outputs)
        tab.select(self.on_refresh, outputs=outputs)  # opening the tab shows the current runs
        self.pick.change(self.on_compare, inputs=self.pick, outputs=self.compare)

    @shown
    def on_refresh(self, request: gr.Request):
        from workbench.demo import mlflow_ui_command

        found = R.visible_runs(self.ctx.workspace, self.ctx.viewer(request))
        command = f"Browse every run in MLflow's own UI:\n\n```\n{mlflow_ui_command(self.ctx.workspace)}\n```"
        return R.runs_frame(found), gr.Dropdown(choices=R.run_choices(found), value=[]), command

    @shown
    def on_compare(self, run_ids: list[str] | None, request: gr.Request):
        allowed = {r.info.run_id: r for r in R.visible_runs(self.ctx.workspace, self.ctx.viewer(request))}
        return R.compare_frame([allowed[i] for i in (run_ids or []) if i in allowed])
