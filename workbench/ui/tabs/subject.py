"""Subject tab: upload photos, get a verdict and advice per photo and for the set."""

from __future__ import annotations

import gradio as gr

from workbench.ui.context import AppContext
from workbench.ui.handlers import subject as S
from workbench.ui.jobs import watch
from workbench.ui.tabs.common import feed, shown


class SubjectTab:
    title, tab_id = "Subject", "subject"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        gr.Markdown(
            f"Upload **1–{S.MAX_PHOTOS} photos** of one person (at most {S.MAX_PHOTO_MB} MB each; 15–20 varied, "
            "recent, sharp photos give the best likeness). Each photo gets a verdict and advice."
        )
        with gr.Row():
            self.name = gr.Textbox(
                label="Subject name", placeholder="e.g. alice", elem_id="subject-name", scale=2
            )
            self.photos = gr.File(label="Photos", file_count="multiple", file_types=["image", ".heic", ".heif"],
                                  elem_id="photos", scale=3)  # fmt: skip
        self.check = gr.Button(
            "Check photos and build the training set", variant="primary", elem_id="intake-btn"
        )
        self.info = gr.Markdown(S.NO_SUBJECT, elem_id="subject-info")
        self.advice = gr.Markdown(elem_id="set-advice")
        self.thumbs = gr.Gallery(
            label="Photos and verdicts", columns=5, height="auto", elem_id="intake-gallery"
        )
        self.verdicts = gr.Dataframe(S.verdicts([]), label="Per-photo advice", wrap=True, elem_id="intake-table",
                                     interactive=False)  # fmt: skip

    def wire(self, picker: gr.Dropdown) -> None:
        # Setting the picker to the new subject fires its change event, which refreshes every tab.
        # The file list is cleared after intake: the app deletes the uploads once the subject's folder has them.
        outputs = [picker, self.advice, self.thumbs, self.verdicts, self.photos]
        self.check.click(
            self.on_intake, inputs=[self.name, self.photos], outputs=outputs, concurrency_limit=4
        )

    def subject_outputs(self) -> list:
        return [self.info]

    @shown
    def on_load(self, request: gr.Request):
        return self.on_refresh(None, request)

    @shown
    def on_refresh(self, selected: str | None, request: gr.Request):
        choices, value = S.subjects(self.ctx.workspace, self.ctx.viewer(request), selected)
        return gr.Dropdown(choices=choices, value=value)

    @shown
    def on_subject(self, selected: str | None, request: gr.Request):
        return S.summary(self.ctx.workspace, self.ctx.viewer(request), selected)

    @shown
    def on_intake(self, name: str, files: list[str] | None, request: gr.Request, progress=gr.Progress()):
        viewer = self.ctx.viewer(request)
        job = S.start_intake(self.ctx.workspace, viewer, name, files)
        running = self.ctx.jobs.start(viewer.key, "intake", job.call)
        for tick in watch(running):
            feed(progress, tick)
            if not tick.done:
                yield gr.skip(), f"Checking photos: {tick.bar()[1]}", gr.skip(), gr.skip(), gr.skip()
        result = tick.outcome()
        rows = S.photo_rows(result)
        yield (self.on_refresh(job.subject, request), S.set_advice(result),
               S.gallery(rows, self.ctx.publish.thumbnail), S.verdicts(rows), None)  # fmt: skip
