"""The Blind test tab: a participant's session as a plain dict (the tab keeps it in ``gr.State``), and scoring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from workbench.errors import WorkbenchError
from workbench.ui import blindtest as bt
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace

NOT_STARTED = "Type a participant name or code, choose a mode, and press Start."


@dataclass(frozen=True)
class BlindView:
    text: str
    left: str | None = None
    right: str | None = None
    pair: bool = False  # two images side by side (2AFC) rather than one
    asking: bool = False  # an item is waiting for an answer


def start(
    workspace: Workspace, viewer: Viewer, subject: str | None, participant: str, mode: str, n: int
) -> dict:
    """A new blind-test session: the items (neutral copies) and where the participant is."""
    subject = viewer.require(workspace, subject)
    if not (participant or "").strip():
        raise WorkbenchError(
            "Type a participant name or code first, so the answers can be scored per person."
        )
    items = bt.build_items(workspace, subject, mode, int(n))  # type: ignore[arg-type]
    return {
        "subject": subject,
        "participant": participant.strip(),
        "items": [i.to_dict() for i in items],
        "index": 0,
    }


def show(state: dict | None) -> BlindView:
    if not state:
        return BlindView(NOT_STARTED)
    items, index = state["items"], state["index"]
    if index >= len(items):
        return BlindView(f"Done: {len(items)} answers stored. Press **Score answers**.")
    item = bt.BlindItem.from_dict(items[index])
    pair = item.mode == "2afc"
    question = "which one is AI?" if pair else "real photo or AI?"
    return BlindView(f"Item {index + 1} of {len(items)}: {question}", item.images[0],
                     item.images[1] if pair else None, pair, True)  # fmt: skip


def answer(workspace: Workspace, viewer: Viewer, state: dict | None, choice: str) -> dict:
    """Store the answer to the current item; the session moves on to the next one."""
    if not state or state["index"] >= len(state["items"]):
        raise WorkbenchError("Press Start to begin a blind test.")
    subject = viewer.require(workspace, state["subject"])
    item = bt.BlindItem.from_dict(state["items"][state["index"]])
    bt.record_answer(workspace, subject, state["participant"], item, choice)  # type: ignore[arg-type]
    return {**state, "index": state["index"] + 1}


def score(workspace: Workspace, viewer: Viewer, subject: str | None, participant: str) -> str:
    """Accuracy with a Wilson CI and d′, for all participants and for this one."""
    from workbench.evaluate.human import read_answers, score_answers

    subject = viewer.require(workspace, subject)
    rows = read_answers(bt.answers_path(workspace, subject))
    if not rows:
        return "No answers yet: run a blind test first."
    who = (participant or "").strip()
    mine = [r for r in rows if r["participant"] == who.lower()]
    overall = score_answers(rows)
    text = [
        f"**All participants** ({overall.get('n_participants', 0)}, {overall.get('n_answers', 0)} answers):"
    ]
    text += _score_lines(overall)
    if mine:
        text += ["", f"**{who}**:", *_score_lines(score_answers(mine))]
    return "\n".join([*text, "", "50% means people cannot tell the generated headshots from real photos."])


def _score_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for mode, label in (("single", "One image"), ("2afc", "Two images (2AFC)")):
        if mode in result:
            acc = result[mode]["accuracy"]
            lines.append(f"- {label}: accuracy **{acc.est:.0%}** (95% Wilson CI {acc.lo:.0%}–{acc.hi:.0%}, "
                         f"n = {acc.n}), d′ = {result[mode]['dprime']:.2f}")  # fmt: skip
    return lines
