"""Blind test tab: real photo or AI? One image or two side by side; answers stored and scored per participant."""

from __future__ import annotations

import gradio as gr

from workbench.ui.context import AppContext
from workbench.ui.handlers import blindtest as B
from workbench.ui.tabs.common import shown

ANSWERS = (("say-real", "Real photo", "real"), ("say-ai", "AI-generated", "ai"),
           ("say-left", "Left is AI", "left"), ("say-right", "Right is AI", "right"))  # fmt: skip


class BlindTestTab:
    title, tab_id = "Blind test", "blind"

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx

    def layout(self) -> None:
        gr.Markdown(
            "Real photo or AI? Images are the subject's own photos mixed with generated ones, all cropped to one "
            "size and stripped of metadata. Answers are stored per participant and scored by the evaluation suite "
            "(accuracy with a Wilson CI, d′)."
        )
        with gr.Row():
            self.participant = gr.Textbox(label="Participant name or code", elem_id="participant")
            self.mode = gr.Radio(label="Mode", choices=[("One image: real or AI?", "single"),
                                 ("Two images: which one is AI?", "2afc")], value="single", elem_id="blind-mode")  # fmt: skip
            self.n_items = gr.Slider(2, 40, value=6, step=1, label="Items")
        self.start = gr.Button("Start", variant="primary", elem_id="blind-start")
        self.state = gr.State(None)
        self.progress = gr.Markdown(B.NOT_STARTED, elem_id="blind-progress")
        with gr.Row():
            self.left = gr.Image(
                label="Image", type="filepath", interactive=False, height=320, elem_id="blind-a"
            )
            self.right = gr.Image(label="Right", type="filepath", interactive=False, height=320, visible=False,
                                  elem_id="blind-b")  # fmt: skip
        self.buttons = {}
        with gr.Row(visible=False) as self.single_row:
            for elem_id, label, answer in ANSWERS[:2]:
                self.buttons[answer] = gr.Button(label, elem_id=elem_id)
        with gr.Row(visible=False) as self.pair_row:
            for elem_id, label, answer in ANSWERS[2:]:
                self.buttons[answer] = gr.Button(label, elem_id=elem_id)
        self.score = gr.Button("Score answers", elem_id="blind-score")
        self.score_text = gr.Markdown(elem_id="blind-score-text")

    def wire(self, picker: gr.Dropdown) -> None:
        outputs = [self.state, self.progress, self.left, self.right, self.single_row, self.pair_row]
        self.start.click(
            self.on_start, inputs=[picker, self.participant, self.mode, self.n_items], outputs=outputs
        )
        for answer, button in self.buttons.items():
            button.click(self.answerer(answer), inputs=self.state, outputs=outputs)
        self.score.click(self.on_score, inputs=[picker, self.participant], outputs=self.score_text)

    def _show(self, state: dict | None) -> tuple:
        view = B.show(state)
        return (state, view.text, gr.Image(value=view.left, label="Left" if view.pair else "Image"),
                gr.Image(value=view.right, visible=view.pair), gr.Row(visible=view.asking and not view.pair),
                gr.Row(visible=view.asking and view.pair))  # fmt: skip

    @shown
    def on_start(self, subject: str | None, participant: str, mode: str, n: float, request: gr.Request):
        return self._show(
            B.start(self.ctx.workspace, self.ctx.viewer(request), subject, participant, mode, int(n))
        )

    def answerer(self, answer: str):
        @shown
        def on_answer(state: dict | None, request: gr.Request):
            return self._show(B.answer(self.ctx.workspace, self.ctx.viewer(request), state, answer))

        return on_answer

    @shown
    def on_score(self, subject: str | None, participant: str, request: gr.Request):
        return B.score(self.ctx.workspace, self.ctx.viewer(request), subject, participant)
