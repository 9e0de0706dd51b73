"""Which subjects a browser session may see: its own, unless the operator started the app with --all-subjects.

A session's subjects carry a ``ui_owner`` field in ``subject.json`` (a hash of Gradio's session hash, never the
hash itself) and a short suffix on their id, so two people who both type "alice" get two subjects. Ownership is
kept in the workspace rather than in process memory, so it survives a restart and ``forget`` erases it with the
subject. Every handler that takes a subject id checks it here: a dropdown's choices are not a security boundary.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from workbench.errors import WorkbenchError
from workbench.workspace import Workspace, validate_subject_id

OWNER_FIELD = "ui_owner"


@dataclass(frozen=True)
class Viewer:
    """One browser session's view of the workspace."""

    owner: str  # hash of the session; "" for a process-local caller such as a test or the operator
    sees_all: bool = False

    @classmethod
    def from_session(cls, session_hash: str | None, sees_all: bool = False) -> Viewer:
        if not session_hash and not sees_all:
            raise WorkbenchError("This request has no browser session; reload the page.")
        owner = hashlib.sha256((session_hash or "").encode()).hexdigest()[:16] if session_hash else ""
        return cls(owner=owner, sees_all=sees_all)

    def subject_id(self, name: str) -> str:
        """The workspace id for a subject name typed in this session (``alice`` -> ``alice-3fa2c1``)."""
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", (name or "").strip()).strip("-_")
        if not name:
            raise WorkbenchError("Type a subject name first (letters, digits, '-' or '_'), e.g. alice.")
        if self.sees_all or not self.owner:
            return validate_subject_id(name[:64])
        suffix = f"-{self.owner[:6]}"
        if name.endswith(suffix):
            return validate_subject_id(name)
        return validate_subject_id(name[: 64 - len(suffix)] + suffix)

    def can_see(self, workspace: Workspace, subject_id: str) -> bool:
        if self.sees_all:
            return True
        try:
            record = workspace.read_subject(subject_id)
        except WorkbenchError:
            return False
        return bool(self.owner) and record.get(OWNER_FIELD) == self.owner

    def subjects(self, workspace: Workspace) -> list[str]:
        return [s for s in workspace.subjects() if self.can_see(workspace, s)]

    def require(self, workspace: Workspace, subject_id: str | None) -> str:
        """The subject id if this session may use it, else the same error as for a subject that does not exist."""
        if not subject_id:
            raise WorkbenchError("No subject selected: upload photos on the Subject tab first.")
        if not self.can_see(workspace, subject_id):
            # Same words whether it is missing or someone else's: do not reveal other sessions' subjects.
            raise WorkbenchError(
                f"No subject '{subject_id}' in this session: upload photos on the Subject tab first."
            )
        return subject_id

    def check_free(self, workspace: Workspace, subject_id: str) -> None:
        """Refuse a subject id that already belongs to another session (call before writing anything)."""
        if self.sees_all or subject_id not in workspace.subjects():
            return
        if workspace.read_subject(subject_id).get(OWNER_FIELD) not in (None, self.owner):
            raise WorkbenchError(f"Subject name '{subject_id}' is taken: choose another name.")

    def claim(self, workspace: Workspace, subject_id: str) -> None:
        """Mark a subject this session just created as its own."""
        if not self.sees_all and self.owner:
            workspace.write_subject(subject_id, **{OWNER_FIELD: self.owner})
