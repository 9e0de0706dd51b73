"""One selfie tab: upload one photo -> tuning-free headshots (IP-Adapter), with progress; no training."""

from __future__ import annotations

import gradio as gr

from workbench.ui import choices
from workbench.ui.context import AppContext
from workbench.ui.handlers import quick as Q
from workbench.ui.jobs import watch
from workbench.ui.tabs.common import GPU, cancel, feed, shown


class QuickTab:
    title, tab_id = "One selfie", "quick"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        gr.Markdown("One photo in, headshots out, **no training**: the face is passed to the model through an "
                    "IP-Adapter (tuning-free). For the best likeness, train a LoRA on 15-20 photos instead.")  # fmt: skip
        with gr.Row():
            self.photo = gr.Image(label="Your selfie", type="filepath", height=240, elem_id="quick-photo")
            with gr.Column():
                self.name = gr.Textbox(label="Name", value="selfie", elem_id="quick-name")
                self.presets = gr.Dropdown(label="Style presets", multiselect=True, choices=choices.presets(),
                                           value=["corporate"], elem_id="quick-presets")  # fmt: skip
                self.count = gr.Slider(1, 16, value=4, step=1, label="Headshots", elem_id="quick-count")
                self.model = gr.Dropdown(label="Base model", choices=choices.models(), value="tiny",
                                         allow_custom_value=True, elem_id="quick-model")  # fmt: skip
                self.method = gr.Radio(
                    list(Q.METHODS), value=Q.METHODS[0], label="Method", elem_id="quick-method"
                )
        with gr.Row():
            self.go = gr.Button("Make headshots", variant="primary", elem_id="quick-btn")
            self.stop = gr.Button("Cancel", variant="stop", elem_id="quick-cancel")
        self.status = gr.Markdown(Q.NOT_STARTED, elem_id="quick-status")
        self.gallery = gr.Gallery(label="Headshots", columns=4, elem_id="quick-gallery")
        self.download = gr.File(label="Download", elem_id="quick-download")

    def wire(self, picker: gr.Dropdown) -> gr.events.Dependency:
        inputs = [self.name, self.photo, self.model, self.method, self.presets, self.count]
        event = self.go.click(self.on_quick, inputs=inputs, outputs=[self.status, self.gallery, self.download],
                              **GPU)  # fmt: skip
        self.stop.click(self.on_cancel, queue=False)
        return event

    @shown
    def on_quick(
        self, name, photo, model, method, presets, count, request: gr.Request, progress=gr.Progress()
    ):
        viewer = self.ctx.viewer(request)
        job = Q.start_quick(self.ctx.workspace, viewer, name, photo, model, method, presets, count)
        for tick in watch(self.ctx.jobs.start(viewer.key, "quick", job.call)):
            feed(progress, tick)
            now = Q.view(self.ctx.workspace, job, tick, self.ctx.publish)
            yield now.status, now.images, now.download

    @shown
    def on_cancel(self, request: gr.Request):
        cancel(self.ctx.jobs, self.ctx.viewer(request).key, "quick")
