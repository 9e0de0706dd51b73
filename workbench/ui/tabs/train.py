"""Train tab: a recipe fills the widgets, Train runs the stage in a job, curves come live from MLflow."""

from __future__ import annotations

import gradio as gr

from workbench.ui import choices
from workbench.ui.context import AppContext
from workbench.ui.forms import TRAIN_FIELDS
from workbench.ui.handlers import train as T
from workbench.ui.jobs import watch
from workbench.ui.tabs.common import GPU, cancel, feed, shown


class TrainTab:
    title, tab_id = "Train", "train"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        names = choices.recipes()
        recipe = T.DEFAULT_RECIPE if T.DEFAULT_RECIPE in names else choices.NO_RECIPE
        filled = T.fill(recipe)
        with gr.Row():
            self.recipe = gr.Dropdown(label="Recipe (fills the fields below)", choices=names, value=recipe,
                                      elem_id="train-recipe")  # fmt: skip
            model = gr.Dropdown(label="Base model (preset, hub id or folder)", choices=choices.models(),
                                value=filled["model"], allow_custom_value=True, elem_id="train-model")  # fmt: skip
        with gr.Row():
            steps = gr.Number(label="Steps", value=filled["max_train_steps"], precision=0, minimum=1,
                              elem_id="train-steps")  # fmt: skip
            rank = gr.Number(
                label="LoRA rank", value=filled["rank"], precision=0, minimum=1, elem_id="train-rank"
            )
            lr = gr.Number(label="Learning rate", value=filled["learning_rate"], elem_id="train-lr")
            every = gr.Number(label="Validate every N steps (0 = at the end)", value=filled["validation_steps"],
                              precision=0, minimum=0)  # fmt: skip
            seed = gr.Number(label="Seed", value=filled["seed"], precision=0)
            resolution = gr.Number(
                label="Resolution (0 = the model's)", value=filled["resolution"], precision=0, minimum=0
            )
        self.fields = dict(zip(TRAIN_FIELDS, (model, resolution, steps, rank, lr, every, seed), strict=True))
        with gr.Accordion(
            "More options: KEY=VALUE, one per line (as `workbench train` takes them)", open=False
        ):
            self.extra = gr.Textbox(show_label=False, lines=3, placeholder="with_prior_preservation=false\n"
                                    "train_text_encoder=true", elem_id="train-extra")  # fmt: skip
        with gr.Row():
            self.train = gr.Button("Train", variant="primary", elem_id="train-btn")
            self.stop = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
        self.status = gr.Markdown(T.NOT_STARTED, elem_id="train-status")
        self.note = gr.Markdown(T.NO_CURVES, elem_id="curves-note")
        # No frame until a run logs one: an empty frame's columns would type "metric" as a number.
        with gr.Row():
            self.loss = gr.LinePlot(x="step", y="value", color="metric", title="Loss", elem_id="loss-plot")
            self.likeness = gr.LinePlot(x="step", y="value", color="metric", title="Likeness (validation)",
                                        elem_id="likeness-plot")  # fmt: skip

    def wire(self, picker: gr.Dropdown) -> gr.events.Dependency:
        fields = list(self.fields.values())
        self.recipe.change(self.on_recipe, inputs=self.recipe, outputs=fields)
        event = self.train.click(self.on_train, inputs=[picker, self.recipe, self.extra, *fields],
                                 outputs=[self.status, self.note, self.loss, self.likeness], **GPU)  # fmt: skip
        self.stop.click(self.on_cancel, queue=False)
        return event

    @shown
    def on_recipe(self, recipe: str | None):
        filled = T.fill(recipe)
        return [filled[name] for name in self.fields]

    @shown
    def on_train(self, subject: str | None, recipe: str | None, extra: str | None, model, resolution, steps, rank,
                 lr, every, seed, request: gr.Request, progress=gr.Progress()):  # fmt: skip
        viewer = self.ctx.viewer(request)
        values = dict(zip(TRAIN_FIELDS, (model, resolution, steps, rank, lr, every, seed), strict=True))
        job = T.start_train(self.ctx.workspace, viewer, subject, recipe, values, extra or "")
        for tick in watch(self.ctx.jobs.start(viewer.key, "train", job.call)):
            feed(progress, tick)
            shown_now = T.view(self.ctx.workspace, job, tick)
            yield shown_now.status, shown_now.note, shown_now.loss, shown_now.likeness

    @shown
    def on_cancel(self, request: gr.Request):
        cancel(self.ctx.jobs, self.ctx.viewer(request).key, "train")
