"""The Gradio app: the CLI's pipeline in a browser tab, one tab per stage, plus runs and a blind test.

``build_app(workspace)`` returns a ``gr.Blocks``; nothing launches on import and nothing lives at module level.
Handlers are closures over the workspace that call :mod:`workbench.ui.handlers` and the stage functions; a
``WorkbenchError`` is shown as the same sentence the CLI prints. Train, generate and evaluate share one queue
(``concurrency_id="gpu"``, one at a time): two LoRA trainings on one GPU would both run out of memory.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no calls home

import gradio as gr  # noqa: E402
import pandas as pd  # noqa: E402

from workbench.errors import MissingDependencyError, WorkbenchError  # noqa: E402
from workbench.ui import blindtest as bt  # noqa: E402
from workbench.ui import handlers as H  # noqa: E402
from workbench.ui import runs as R  # noqa: E402
from workbench.ui.handlers import MAX_PHOTO_MB, MAX_PHOTOS  # noqa: E402
from workbench.ui.jobs import JobBoard  # noqa: E402
from workbench.ui.sessions import Viewer  # noqa: E402
from workbench.workspace import Workspace  # noqa: E402

GPU_QUEUE = "gpu"
POLL_S = 0.5
# System fonts only: the default theme would fetch Google Fonts, which an offline machine cannot reach.
FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
MONO = ["ui-monospace", "monospace"]


def launch_options(workspace: Workspace) -> dict[str, Any]:
    """``launch()`` settings every entry point uses: upload limit, offline theme, no API page."""
    return {
        "max_file_size": f"{MAX_PHOTO_MB}mb",
        "theme": gr.themes.Default(font=FONTS, font_mono=MONO),
        "footer_links": [],
        "show_error": True,
    }


def _shown(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show a WorkbenchError as a Gradio error toast with the CLI's sentence (also for generators)."""

    def reraise(exc: BaseException) -> None:
        raise gr.Error(str(exc), print_exception=False) from exc

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def gen_wrapper(*args: Any, **kwargs: Any):
            try:
                yield from fn(*args, **kwargs)
            except (WorkbenchError, MissingDependencyError) as exc:
                reraise(exc)

        return gen_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any):
        try:
            return fn(*args, **kwargs)
        except (WorkbenchError, MissingDependencyError) as exc:
            reraise(exc)

    return wrapper


def build_app(
    workspace: Workspace, *, operator_sees_all: bool = False, title: str = "Headshot Workbench"
) -> gr.Blocks:
    """The whole app for ``workspace``; with ``operator_sees_all`` every session sees every subject."""
    jobs = JobBoard()  # per app, not per module: two apps in one process do not share jobs
    publish = H.Publisher()

    def viewer(request: gr.Request | None) -> Viewer:
        return Viewer.from_session(getattr(request, "session_hash", None), operator_sees_all)

    def subject_dropdown(request: gr.Request, selected: str | None = None) -> Any:
        choices = viewer(request).subjects(workspace)
        value = selected if selected in choices else (choices[-1] if choices else None)
        return gr.Dropdown(choices=choices, value=value)

    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(
            f"# {title}\nPhotos in → LoRA trained → headshots generated → scored, every step tracked in MLflow. "
            + ("*Operator mode: every subject in the workspace is shown.*" if operator_sees_all else
               "*You see only the subjects created in this browser session.*")
        )  # fmt: skip
        with gr.Row():
            subject = gr.Dropdown(label="Subject", choices=[], value=None, scale=3, elem_id="subject-picker")
            refresh = gr.Button("Refresh", scale=0, size="sm")

        # -- Subject ------------------------------------------------------------------------------------------
        with gr.Tab("Subject", id="subject", elem_id="tab-subject"):
            gr.Markdown(
                f"Upload **1–{MAX_PHOTOS} photos** of one person (at most {MAX_PHOTO_MB} MB each; 15–20 varied, "
                "recent, sharp photos give the best likeness). Each photo gets a verdict and advice."
            )
            with gr.Row():
                name = gr.Textbox(
                    label="Subject name", placeholder="e.g. alice", elem_id="subject-name", scale=2
                )
                photos = gr.File(
                    label="Photos", file_count="multiple", file_types=["image", ".heic", ".heif"],
                    elem_id="photos", scale=3,
                )  # fmt: skip
            check = gr.Button(
                "Check photos and build the training set", variant="primary", elem_id="intake-btn"
            )
            subject_info = gr.Markdown(elem_id="subject-info")
            set_advice = gr.Markdown(elem_id="set-advice")
            thumbs = gr.Gallery(
                label="Photos and verdicts", columns=5, height="auto", elem_id="intake-gallery"
            )
            verdicts = gr.Dataframe(
                label="Per-photo advice", wrap=True, elem_id="intake-table", interactive=False
            )

        # -- Train --------------------------------------------------------------------------------------------
        with gr.Tab("Train", id="train", elem_id="tab-train"):
            with gr.Row():
                recipe = gr.Dropdown(
                    label="Recipe (experiments/train)", choices=[H.NO_RECIPE], value=H.NO_RECIPE
                )
                train_model = gr.Dropdown(
                    label="Base model (preset, hub id or folder)", choices=H.MODEL_CHOICES, value="tiny",
                    allow_custom_value=True, elem_id="train-model",
                )  # fmt: skip
            with gr.Row():
                steps = gr.Number(label="Steps", value=20, precision=0, minimum=1, elem_id="train-steps")
                lr = gr.Number(label="Learning rate", value=1e-4)
                rank = gr.Number(label="LoRA rank", value=4, precision=0, minimum=1)
                val_every = gr.Number(label="Validate every N steps", value=10, precision=0, minimum=0)
                train_seed = gr.Number(label="Seed", value=42, precision=0)
            with gr.Row():
                train_btn = gr.Button("Train", variant="primary", elem_id="train-btn")
                train_stop = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
            train_status = gr.Markdown(elem_id="train-status")
            with gr.Row():
                loss_plot = gr.LinePlot(
                    x="step", y="value", color="metric", title="Loss", elem_id="loss-plot"
                )
                like_plot = gr.LinePlot(
                    x="step",
                    y="value",
                    color="metric",
                    title="Likeness (validation)",
                    elem_id="likeness-plot",
                )

        # -- Generate -----------------------------------------------------------------------------------------
        with gr.Tab("Generate", id="generate", elem_id="tab-generate"):
            with gr.Row():
                presets = gr.Dropdown(
                    label="Style presets (a look, or one per category to vary)", multiselect=True,
                    choices=H.preset_choices(), value=["corporate"], elem_id="presets",
                )  # fmt: skip
                gen_model = gr.Dropdown(
                    label="Base model", choices=H.MODEL_CHOICES, value="tiny", allow_custom_value=True
                )
                lora = gr.Dropdown(label="LoRA", choices=[H.NO_LORA], value=H.NO_LORA, elem_id="lora")
            with gr.Row():
                count = gr.Slider(1, 200, value=4, step=1, label="Images", elem_id="gen-count")
                gen_seed = gr.Number(label="Seed", value=0, precision=0)
                gen_steps = gr.Number(label="Steps (0 = preset)", value=0, precision=0, minimum=0)
            with gr.Accordion(
                "ControlNet (optional): pose or composition from a reference image", open=False
            ):
                with gr.Row():
                    control = gr.Dropdown(label="Control", choices=H.CONTROL_CHOICES, value="none")
                    control_scale = gr.Slider(0, 2, value=1.0, step=0.05, label="Strength")
                    reference = gr.Image(label="Reference image", type="filepath", height=200)
            with gr.Row():
                gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn")
                gen_stop = gr.Button("Cancel", variant="stop")
            gen_status = gr.Markdown(elem_id="generate-status")
            gallery = gr.Gallery(
                label="Generated (seed and parameters under each)", columns=4, elem_id="gen-gallery"
            )
            download = gr.File(
                label="Download (PNG with parameters and AI-made mark inside)", elem_id="download"
            )

        # -- Evaluate -----------------------------------------------------------------------------------------
        with gr.Tab("Evaluate", id="evaluate", elem_id="tab-evaluate"):
            with gr.Row():
                eval_run = gr.Dropdown(label="Generation run", choices=[], elem_id="eval-run")
                eval_metrics = gr.CheckboxGroup(
                    label="Measurements", choices=["likeness", "skin", "detect", "provenance", "ranking"],
                    value=["likeness", "skin", "detect", "provenance", "ranking"],
                )  # fmt: skip
            with gr.Row():
                eval_btn = gr.Button("Evaluate", variant="primary", elem_id="evaluate-btn")
                eval_stop = gr.Button("Cancel", variant="stop")
            eval_summary = gr.Markdown(elem_id="eval-summary")
            group_table = gr.Dataframe(
                label="Per group, with 95% CIs", interactive=False, elem_id="group-table"
            )
            plots = gr.Gallery(label="Plots", columns=3, elem_id="eval-plots")
            ranked = gr.Gallery(label="Ranked: best first, ✓ = usable", columns=5, elem_id="ranked")

        # -- Runs ---------------------------------------------------------------------------------------------
        with gr.Tab("Runs", id="runs", elem_id="tab-runs"):
            runs_refresh = gr.Button("Refresh runs", elem_id="runs-refresh")
            runs_table = gr.Dataframe(
                label="MLflow runs (newest first)", interactive=False, elem_id="runs-table"
            )
            compare_pick = gr.Dropdown(
                label="Compare runs", multiselect=True, choices=[], elem_id="compare-pick"
            )
            compare_table = gr.Dataframe(
                label="Params and metrics side by side (differences first)", interactive=False, wrap=True
            )
            mlflow_cmd = gr.Markdown(elem_id="mlflow-cmd")

        # -- Blind test ---------------------------------------------------------------------------------------
        with gr.Tab("Blind test", id="blind", elem_id="tab-blind"):
            gr.Markdown(
                "Real photo or AI? Images are the subject's own photos mixed with generated ones, all cropped to "
                "one size and stripped of metadata. Answers are stored per participant and scored by the "
                "evaluation suite (accuracy with a Wilson CI, d′)."
            )
            with gr.Row():
                participant = gr.Textbox(label="Participant name or code", elem_id="participant")
                mode = gr.Radio(
                    label="Mode", choices=[("One image: real or AI?", "single"),
                                           ("Two images: which one is AI?", "2afc")], value="single",
                    elem_id="blind-mode",
                )  # fmt: skip
                n_items = gr.Slider(2, 40, value=6, step=1, label="Items")
            start = gr.Button("Start", variant="primary", elem_id="blind-start")
            blind_state = gr.State(None)
            blind_progress = gr.Markdown(elem_id="blind-progress")
            with gr.Row():
                left = gr.Image(
                    label="Image", type="filepath", interactive=False, height=320, elem_id="blind-a"
                )
                right = gr.Image(label="Right", type="filepath", interactive=False, height=320, visible=False,
                                 elem_id="blind-b")  # fmt: skip
            with gr.Row(visible=False) as single_row:
                say_real = gr.Button("Real photo", elem_id="say-real")
                say_ai = gr.Button("AI-generated", elem_id="say-ai")
            with gr.Row(visible=False) as pair_row:
                say_left = gr.Button("Left is AI", elem_id="say-left")
                say_right = gr.Button("Right is AI", elem_id="say-right")
            score_btn = gr.Button("Score answers", elem_id="blind-score")
            blind_score = gr.Markdown(elem_id="blind-score-text")

        # ===================================================================================================
        # handlers: closures over the workspace; each checks the subject against the session's viewer
        # ===================================================================================================
        @_shown
        def on_load(request: gr.Request):
            return subject_dropdown(request), gr.Dropdown(
                choices=[H.NO_RECIPE, *H.recipes()], value=H.NO_RECIPE
            )

        @_shown
        def on_subject(selected: str | None, request: gr.Request):
            v = viewer(request)
            if selected:
                v.require(workspace, selected)
            lora_choices = [(H.NO_LORA, H.NO_LORA), *H.loras(workspace, v, selected)]
            runs = H.generation_runs(workspace, v, selected)
            return (
                H.subject_summary(workspace, v, selected),
                gr.Dropdown(
                    choices=lora_choices, value=lora_choices[1][1] if len(lora_choices) > 1 else H.NO_LORA
                ),
                gr.Dropdown(choices=runs, value=runs[0][1] if runs else None),
            )

        @_shown
        def on_intake(subject_name: str, files: list[str] | None, request: gr.Request,
                      progress=gr.Progress(track_tqdm=True)):  # fmt: skip
            progress(0, desc="checking photos")
            out = H.run_intake(workspace, viewer(request), subject_name, files)
            gallery_items = [
                (publish.thumbnail(r["path"]), ("✓ " if r["accepted"] else "✗ ") + r["name"] + ": " + r["advice"])
                for r in out["rows"]
            ]  # fmt: skip
            n_ok = sum(r["accepted"] for r in out["rows"])
            advice = f"**{n_ok} of {len(out['rows'])} photos accepted** for subject `{out['subject']}`.\n\n"
            advice += "\n".join(f"- {line}" for line in out["advice"]) or "- The set looks good."
            return (
                subject_dropdown(request, out["subject"]),
                advice,
                gallery_items,
                H.photo_verdicts(out["rows"]),
            )

        def _curves(run_id: str | None) -> tuple[pd.DataFrame, pd.DataFrame]:
            empty = pd.DataFrame({"step": [], "value": [], "metric": []})
            if not run_id:
                return empty, empty
            loss = R.metric_history(workspace, run_id, "loss")
            like = R.metric_history(workspace, run_id, "val_")
            return loss, like

        @_shown
        def on_train(selected, recipe_name, model, n_steps, learning_rate, lora_rank, every, seed,
                     request: gr.Request, progress=gr.Progress(track_tqdm=True)):  # fmt: skip
            from workbench.train import train_lora

            v = viewer(request)
            subject_id = v.require(workspace, selected)
            config = H.train_config(
                recipe_name, model, max_train_steps=int(n_steps), learning_rate=float(learning_rate),
                rank=int(lora_rank), validation_steps=int(every), seed=int(seed),
            )  # fmt: skip
            since = int(time.time() * 1000) - 1000
            job = jobs.start(request.session_hash, lambda: train_lora(workspace, subject_id, config))
            run_id = None
            try:
                while not job.wait(POLL_S):
                    run_id = run_id or R.latest_stage_run(workspace, subject_id, "train", since)
                    loss, like = _curves(run_id)
                    step = int(loss["step"].max()) if len(loss) else 0
                    progress(
                        step / config.max_train_steps, desc=f"training step {step}/{config.max_train_steps}"
                    )
                    yield (
                        f"Training `{subject_id}` on `{config.model}`: step {step} of {config.max_train_steps}…",
                        loss,
                        like,
                    )
                if job.cancelled:
                    yield (
                        "Training cancelled: the MLflow run is marked KILLED; checkpoints can be resumed.",
                        *_curves(run_id),
                    )
                    return
                result = job.outcome()
            finally:
                jobs.finish(request.session_hash, job)
            loss, like = _curves(result.run_id)
            text = (
                f"Done: {result.steps} steps in {result.seconds:.1f} s, final loss {result.final_loss:.4f}. "
                f"LoRA: `{result.lora_file}` (MLflow run `{result.run_id}`)."
            )
            yield text, loss, like

        @_shown
        def on_cancel(request: gr.Request):
            stopped = jobs.cancel(request.session_hash)
            if stopped:
                gr.Info("Stopping after the current step…")

        @_shown
        def on_generate(selected, model, lora_path, preset_names, n, seed, n_steps, control_kind, ref, scale,
                        request: gr.Request, progress=gr.Progress(track_tqdm=True)):  # fmt: skip
            from workbench.generate import generate_batch, read_manifest

            v = viewer(request)
            subject_id = v.require(workspace, selected)
            if (
                lora_path
                and lora_path != H.NO_LORA
                and lora_path not in dict(H.loras(workspace, v, subject_id)).values()
            ):
                raise WorkbenchError("That LoRA does not belong to this subject: pick one from the list.")
            run_name = workspace.new_run_name("generate")
            config = H.generate_config(subject_id, model, lora_path, preset_names, n, seed, n_steps, control_kind,
                                       ref, scale, run_name)  # fmt: skip
            run_dir = workspace.generation_dir(subject_id, run_name)
            job = jobs.start(request.session_hash, lambda: generate_batch(config, workspace))
            try:
                while not job.wait(POLL_S):
                    records = read_manifest(run_dir) if run_dir.is_dir() else []
                    progress(len(records) / config.n_images, desc=f"image {len(records)}/{config.n_images}")
                    items = [(publish(run_dir / r["file"]), H.caption(r)) for r in records]
                    yield f"Generating {len(records)} of {config.n_images}…", items, None
                if job.cancelled:
                    yield (
                        "Cancelled: finished images are kept; the same run name resumes the batch.",
                        gr.skip(),
                        None,
                    )
                    return
                result = job.outcome()
            finally:
                jobs.finish(request.session_hash, job)
            items = [(publish(result.run_dir / r["file"]), H.caption(r)) for r in result.records]
            archive = H.zip_folder(result.run_dir, publish.folder / "downloads" / subject_id)
            text = (
                f"{len(result.records)} images in `{result.run_dir}` ({result.seconds:.1f} s sampling, "
                f"MLflow run `{result.mlflow_run_id}`)."
            )
            yield text, items, str(archive)

        @_shown
        def on_evaluate(selected, run_dir, metric_names, request: gr.Request,
                        progress=gr.Progress(track_tqdm=True)):  # fmt: skip
            from workbench.evaluate import EvalConfig, run_suite

            v = viewer(request)
            subject_id = v.require(workspace, selected)
            if not run_dir or run_dir not in dict(H.generation_runs(workspace, v, subject_id)).values():
                raise WorkbenchError("Pick a generation run of this subject (generate some images first).")
            config = EvalConfig(metrics=list(metric_names or ["likeness"]))
            progress(0, desc="evaluating")
            result = run_suite(config, subject=subject_id, images=run_dir, workspace=workspace)
            plot_items = [(publish(p), k) for k, p in result.files.items() if Path(p).suffix == ".png"]
            table = result.table
            ranked_items = []
            for _, row in table.iterrows():
                if row.get("file"):
                    mark = "✓ usable" if bool(row.get("usable")) else "✗ " + str(row.get("reasons") or "")
                    label = (
                        f"#{int(row['rank'])} {mark} · score {float(row.get('score', 0)):.2f}"
                        if "rank" in row
                        else mark
                    )
                    ranked_items.append((publish(row["file"]), label))
            return (
                H.headline(result.summary, result.metrics),
                H.group_rows(result.groups),
                plot_items,
                ranked_items,
            )

        @_shown
        def on_runs(request: gr.Request):
            v = viewer(request)
            found = R.list_runs(workspace, None if v.sees_all else v.subjects(workspace))
            from workbench.demo import mlflow_ui_command

            choices = [
                (f"{r.info.run_name} · {r.data.tags.get(R.STAGE_TAG, '')}", r.info.run_id) for r in found
            ]
            cmd = f"Browse every run in MLflow's own UI:\n\n```\n{mlflow_ui_command(workspace)}\n```"
            return R.runs_frame(found), gr.Dropdown(choices=choices, value=[]), cmd

        @_shown
        def on_compare(run_ids: list[str] | None, request: gr.Request):
            v = viewer(request)
            allowed = {
                r.info.run_id: r
                for r in R.list_runs(workspace, None if v.sees_all else v.subjects(workspace))
            }
            return R.compare_frame([allowed[i] for i in (run_ids or []) if i in allowed])

        def _show_item(state: dict) -> tuple:
            items, index = state["items"], state["index"]
            if index >= len(items):
                return (f"Done: {len(items)} answers stored. Press **Score answers**.", gr.Image(value=None),
                        gr.Image(value=None, visible=False), gr.Row(visible=False), gr.Row(visible=False))  # fmt: skip
            item = bt.BlindItem.from_dict(items[index])
            pair = item.mode == "2afc"
            text = f"Item {index + 1} of {len(items)}: " + (
                "which one is AI?" if pair else "real photo or AI?"
            )
            return (
                text,
                gr.Image(value=item.images[0], label="Left" if pair else "Image"),
                gr.Image(value=item.images[1] if pair else None, visible=pair),
                gr.Row(visible=not pair),
                gr.Row(visible=pair),
            )

        @_shown
        def on_start(selected, who, kind, n, request: gr.Request):
            subject_id = viewer(request).require(workspace, selected)
            if not (who or "").strip():
                raise WorkbenchError(
                    "Type a participant name or code first, so the answers can be scored per person."
                )
            items = bt.build_items(workspace, subject_id, kind, int(n))
            state = {"subject": subject_id, "participant": who.strip(), "items": [i.to_dict() for i in items],
                     "index": 0}  # fmt: skip
            return state, *_show_item(state)

        def make_answer(answer: str):
            @_shown
            def on_answer(state: dict | None, request: gr.Request):
                if not state or state["index"] >= len(state["items"]):
                    raise WorkbenchError("Press Start to begin a blind test.")
                subject_id = viewer(request).require(workspace, state["subject"])
                item = bt.BlindItem.from_dict(state["items"][state["index"]])
                bt.record_answer(workspace, subject_id, state["participant"], item, answer)
                state = {**state, "index": state["index"] + 1}
                return state, *_show_item(state)

            return on_answer

        @_shown
        def on_score(selected, who, request: gr.Request):
            from workbench.evaluate.human import read_answers, score_answers

            subject_id = viewer(request).require(workspace, selected)
            path = bt.answers_path(workspace, subject_id)
            rows = read_answers(path)
            overall = score_answers(rows)
            mine = [r for r in rows if r["participant"] == (who or "").strip().lower()]
            return _score_text(overall, score_answers(mine) if mine else None, (who or "").strip())

        # ===================================================================================================
        # wiring
        # ===================================================================================================
        blind_outputs = [blind_state, blind_progress, left, right, single_row, pair_row]
        app.load(on_load, outputs=[subject, recipe])
        refresh.click(subject_dropdown, outputs=subject)
        subject.change(on_subject, inputs=subject, outputs=[subject_info, lora, eval_run])
        check.click(on_intake, inputs=[name, photos], outputs=[subject, set_advice, thumbs, verdicts],
                    concurrency_limit=4)  # fmt: skip

        gpu = {"concurrency_limit": 1, "concurrency_id": GPU_QUEUE}
        train_event = train_btn.click(
            on_train, inputs=[subject, recipe, train_model, steps, lr, rank, val_every, train_seed],
            outputs=[train_status, loss_plot, like_plot], **gpu,
        )  # fmt: skip
        train_event.then(on_subject, inputs=subject, outputs=[subject_info, lora, eval_run])
        train_stop.click(on_cancel, cancels=[train_event], queue=False)

        gen_event = gen_btn.click(
            on_generate,
            inputs=[subject, gen_model, lora, presets, count, gen_seed, gen_steps, control, reference, control_scale],
            outputs=[gen_status, gallery, download], **gpu,
        )  # fmt: skip
        gen_event.then(on_subject, inputs=subject, outputs=[subject_info, lora, eval_run])
        gen_stop.click(on_cancel, cancels=[gen_event], queue=False)

        eval_event = eval_btn.click(
            on_evaluate, inputs=[subject, eval_run, eval_metrics], outputs=[eval_summary, group_table, plots, ranked],
            **gpu,
        )  # fmt: skip
        eval_stop.click(None, cancels=[eval_event])

        runs_refresh.click(on_runs, outputs=[runs_table, compare_pick, mlflow_cmd])
        compare_pick.change(on_compare, inputs=compare_pick, outputs=compare_table)

        start.click(on_start, inputs=[subject, participant, mode, n_items], outputs=blind_outputs)
        for button, answer in ((say_real, "real"), (say_ai, "ai"), (say_left, "left"), (say_right, "right")):
            button.click(make_answer(answer), inputs=blind_state, outputs=blind_outputs)
        score_btn.click(on_score, inputs=[subject, participant], outputs=blind_score)
    app.queue(default_concurrency_limit=4)
    return app


def _score_text(overall: dict[str, Any], mine: dict[str, Any] | None, who: str) -> str:
    def block(result: dict[str, Any]) -> list[str]:
        lines = []
        for mode, label in (("single", "One image"), ("2afc", "Two images (2AFC)")):
            if mode in result:
                acc = result[mode]["accuracy"]
                lines.append(
                    f"- {label}: accuracy **{acc['est']:.0%}** (95% Wilson CI {acc['lo']:.0%}–{acc['hi']:.0%}, "
                    f"n = {acc['n']}), d′ = {result[mode]['dprime']:.2f}"
                )
        return lines

    text = [
        f"**All participants** ({overall.get('n_participants', 0)}, {overall.get('n_answers', 0)} answers):"
    ]
    text += block(overall)
    if mine:
        text += ["", f"**{who}**:", *block(mine)]
    text += ["", "50% means people cannot tell the generated headshots from real photos."]
    return "\n".join(text)
