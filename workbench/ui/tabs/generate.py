"""Generate tab: presets, a LoRA (which fills the base model it was trained on), ControlNet; a live gallery."""

from __future__ import annotations

import gradio as gr

from workbench.ui import choices
from workbench.ui.context import AppContext
from workbench.ui.forms import GENERATE_FIELDS, UNSET
from workbench.ui.handlers import generate as G
from workbench.ui.jobs import watch
from workbench.ui.tabs.common import GPU, cancel, feed, shown


class GenerateTab:
    title, tab_id = "Generate", "generate"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        filled = G.fill(None)
        with gr.Row():
            presets = gr.Dropdown(label="Style presets (a look, or one per category to vary)", multiselect=True,
                                  choices=choices.presets(), value=filled["presets"], elem_id="presets")  # fmt: skip
            model = gr.Dropdown(label="Base model (filled from the LoRA)", choices=choices.models(),
                                value=filled["model"], allow_custom_value=True, elem_id="gen-model")  # fmt: skip
            self.lora = gr.Dropdown(
                label="LoRA", choices=[choices.NO_LORA], value=choices.NO_LORA, elem_id="lora"
            )
        with gr.Row():
            count = gr.Slider(1, 200, value=filled["count"], step=1, label="Images", elem_id="gen-count")
            seed = gr.Number(label="Seed (image i uses seed + i)", value=filled["seed"], precision=0)
            steps = gr.Number(label="Steps (0 = preset)", value=filled["steps"], precision=0, minimum=0)
            scheduler = gr.Dropdown(label="Sampler", choices=[UNSET, *choices.schedulers()],
                                    value=filled["scheduler"], elem_id="gen-scheduler")  # fmt: skip
        self.fields = dict(zip(GENERATE_FIELDS, (model, presets, count, seed, steps, scheduler), strict=True))
        with gr.Accordion("ControlNet (optional): pose or composition from a reference image", open=False):
            with gr.Row():
                self.control = gr.Dropdown(label="Control", choices=choices.control_types(), value="none")
                self.scale = gr.Slider(0, 2, value=1.0, step=0.05, label="Strength")
                self.reference = gr.Image(label="Reference image", type="filepath", height=200)
        with gr.Row():
            self.generate = gr.Button("Generate", variant="primary", elem_id="generate-btn")
            self.stop = gr.Button("Cancel", variant="stop", elem_id="generate-cancel")
        self.status = gr.Markdown(G.NOT_STARTED, elem_id="generate-status")
        self.gallery = gr.Gallery(label="Generated (seed and parameters under each)", columns=4,
                                  elem_id="gen-gallery")  # fmt: skip
        self.download = gr.File(
            label="Download (PNG with parameters and AI-made mark inside)", elem_id="download"
        )

    def wire(self, picker: gr.Dropdown) -> gr.events.Dependency:
        self.lora.change(self.on_lora, inputs=self.lora, outputs=self.fields["model"])
        inputs = [picker, self.lora, self.control, self.reference, self.scale, *self.fields.values()]
        event = self.generate.click(self.on_generate, inputs=inputs,
                                    outputs=[self.status, self.gallery, self.download], **GPU)  # fmt: skip
        self.stop.click(self.on_cancel, queue=False)
        return event

    def subject_outputs(self) -> list:
        return [self.lora]

    @shown
    def on_subject(self, selected: str | None, request: gr.Request):
        found = G.loras(self.ctx.workspace, self.ctx.viewer(request), selected)
        return gr.Dropdown(choices=[(choices.NO_LORA, choices.NO_LORA), *found],
                           value=found[0][1] if found else choices.NO_LORA)  # fmt: skip

    @shown
    def on_lora(self, lora: str | None):
        return G.fill(lora)["model"]

    @shown
    def on_generate(self, subject: str | None, lora: str | None, control: str | None, reference: str | None,
                    scale: float, model, presets, count, seed, steps, scheduler, request: gr.Request,
                    progress=gr.Progress()):  # fmt: skip
        viewer = self.ctx.viewer(request)
        values = dict(zip(GENERATE_FIELDS, (model, presets, count, seed, steps, scheduler), strict=True))
        job = G.start_generate(self.ctx.workspace, viewer, subject, lora, values,
                               G.control_specs(control, reference, scale))  # fmt: skip
        for tick in watch(self.ctx.jobs.start(viewer.key, "generate", job.call)):
            feed(progress, tick)
            shown_now = G.view(self.ctx.workspace, job, tick, self.ctx.publish)
            yield shown_now.status, shown_now.images, shown_now.download

    @shown
    def on_cancel(self, request: gr.Request):
        cancel(self.ctx.jobs, self.ctx.viewer(request).key, "generate")
