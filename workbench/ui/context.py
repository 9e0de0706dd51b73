"""What every tab of one app shares: the workspace, who may see what, the running jobs, the published files."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.ui.jobs import JobBoard
from workbench.ui.publish import Publisher
from workbench.ui.sessions import Viewer
from workbench.workspace import Workspace


@dataclass
class AppContext:
    """One per ``build_app``: two apps in one process share nothing."""

    workspace: Workspace
    logins: bool = False  # started with --auth: each login sees its own subjects
    operator: bool = False  # --all-subjects: every subject, whoever made it
    jobs: JobBoard = field(default_factory=JobBoard)
    publish: Publisher = field(init=False)

    def __post_init__(self) -> None:
        # The copies shown in pages live in the workspace's ui-cache, where `forget` looks.
        self.publish = Publisher(self.workspace)

    def viewer(self, request: Any) -> Viewer:
        """The viewer of a Gradio request (its ``username`` is the login, when there is one)."""
        return Viewer.for_request(
            getattr(request, "username", None), logins=self.logins, operator=self.operator
        )
