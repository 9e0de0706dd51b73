"""The browser app (``workbench ui``): the same pipeline as the CLI, one tab per stage, plus a blind test.

``build_app`` imports Gradio, so it is loaded on first use; the launch guard (:mod:`workbench.ui.launch`) and
the blind-test storage (:mod:`workbench.ui.blindtest`) do not need Gradio.
"""

from __future__ import annotations

from typing import Any

__all__ = ["build_app", "launch"]


def __getattr__(name: str) -> Any:
    if name == "build_app":
        from workbench.ui.app import build_app

        return build_app
    if name == "launch":
        from workbench.ui.launch import launch

        return launch
    raise AttributeError(name)
