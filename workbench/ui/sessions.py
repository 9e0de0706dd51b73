"""Who sees which subjects: everything on loopback; with ``--auth``, each login its own (the operator: all).

* **Loopback, no login** (``workbench ui``): one researcher and their own workspace. The app lists every
  subject on disk, so subjects made with the CLI or a notebook appear and reloading the page loses nothing.
* **With a login** (``--auth``, several people): a subject belongs to the login that created it, recorded as
  ``ui_owner`` in ``subject.json``, so it follows the person from browser to browser and survives restarts, and
  ``forget`` erases it with the subject. A short suffix from the login keeps two people's "alice" apart.
* **Operator** (``--all-subjects``): every subject, whoever made it.

Every handler that takes a subject id checks it here: a dropdown's choices are not a security boundary.
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
    """One person's view of the workspace."""

    login: str | None = None  # the authenticated user name; None on loopback without a login
    sees_all: bool = True

    @classmethod
    def for_request(cls, username: str | None, *, logins: bool, operator: bool = False) -> Viewer:
        """The viewer of a request: ``logins`` says the app was started with ``--auth``."""
        if not logins:
            return cls(login=None, sees_all=True)
        if not username:
            raise WorkbenchError("This app needs a login: reload the page and sign in.")
        return cls(login=username, sees_all=operator)

    @property
    def key(self) -> str:
        """What running jobs are filed under: the login, or one key for the single local researcher."""
        return self.login or "local"

    def subject_id(self, name: str) -> str:
        """The workspace id for a typed subject name (``alice``; with a login ``alice-3fa2c1``)."""
        name = re.sub(r"[^A-Za-z0-9_-]+", "-", (name or "").strip()).strip("-_")
        if not name:
            raise WorkbenchError("Type a subject name first (letters, digits, '-' or '_'), e.g. alice.")
        if self.login is None or self.sees_all:
            return validate_subject_id(name[:64])
        suffix = "-" + hashlib.sha256(self.login.encode()).hexdigest()[:6]
        if name.endswith(suffix):
            return validate_subject_id(name)
        return validate_subject_id(name[: 64 - len(suffix)] + suffix)

    def can_see(self, workspace: Workspace, subject_id: str) -> bool:
        try:
            record = workspace.read_subject(subject_id)
        except WorkbenchError:
            return False
        return self.sees_all or record.get(OWNER_FIELD) == self.login

    def subjects(self, workspace: Workspace) -> list[str]:
        return [s for s in workspace.subjects() if self.can_see(workspace, s)]

    def require(self, workspace: Workspace, subject_id: str | None) -> str:
        """The subject id if this viewer may use it, else the same error as for a subject that does not exist."""
        if not subject_id:
            raise WorkbenchError("No subject selected: upload photos on the Subject tab first.")
        if not self.can_see(workspace, subject_id):
            # Same words whether it is missing or someone else's: do not reveal other people's subjects.
            raise WorkbenchError(f"No subject '{subject_id}' here: upload photos on the Subject tab first.")
        return subject_id

    def check_free(self, workspace: Workspace, subject_id: str) -> None:
        """Refuse a subject id that belongs to another login (call before writing anything)."""
        if self.sees_all or subject_id not in workspace.subjects():
            return
        if workspace.read_subject(subject_id).get(OWNER_FIELD) != self.login:
            raise WorkbenchError(f"Subject name '{subject_id}' is taken: choose another name.")

    def claim(self, workspace: Workspace, subject_id: str) -> None:
        """Mark a subject this login just created as its own (nothing to mark on loopback)."""
        if self.login is not None:
            record = workspace.read_subject(subject_id)
            if OWNER_FIELD not in record:
                workspace.write_subject(subject_id, **{OWNER_FIELD: self.login})
