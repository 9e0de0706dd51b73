"""Errors the workbench raises for bad input or a missing resource.

Every message says what is wrong *and* what to do about it; the CLI prints it as is and the UI shows the same
sentence, so one wording serves every front end.
"""

from __future__ import annotations


class WorkbenchError(ValueError):
    """Bad input or a missing resource, with a message that says how to fix it."""


class ModelNotAvailableError(WorkbenchError):
    """Model weights are neither on this machine nor reachable."""


class MissingDependencyError(ImportError):
    """An optional backend's package is not installed; the message names the extra to install."""


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run is stopped and marked FAILED."""
