"""What ``--json`` prints: exactly one JSON document on stdout, whatever else runs meanwhile.

Libraries write to stdout on their own (MLflow prints "View run ... at ..." when a run against a tracking
server ends); under ``--json`` everything the command does goes to stderr, and only the document to stdout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def to_jsonable(value: Any) -> Any:
    """Plain JSON values for a result: an object's own ``to_dict`` (Estimate, results that define one), else a
    dataclass's fields; Paths as strings, tables as rows, NaN and infinities as null."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if hasattr(value, "columns") and hasattr(value, "to_dict"):  # a pandas DataFrame: one object per row
        return to_jsonable(value.to_dict(orient="records"))
    if callable(getattr(value, "to_dict", None)):
        return to_jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if callable(getattr(value, "item", None)):  # numpy scalars
        return to_jsonable(value.item())
    return str(value)


def print_json(value: Any) -> None:
    """The one document ``--json`` prints."""
    print(json.dumps(to_jsonable(value), indent=2, allow_nan=False))


@contextlib.contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """Send whatever is printed inside the block to stderr (keeps stdout for the ``--json`` document).

    Python-level writes are redirected; when stdout is the process's own, file descriptor 1 is too, so
    subprocesses and native code cannot write to stdout either.
    """
    if not enabled:
        yield
        return
    original = sys.stdout
    original.flush()
    saved_fd = _redirect_fd()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        original.flush()  # what a kept reference (a logging handler) wrote goes where fd 1 pointed meanwhile
        sys.stderr.flush()
        if saved_fd is not None:
            os.dup2(saved_fd, 1)
            os.close(saved_fd)


def _redirect_fd() -> int | None:
    """Point fd 1 at fd 2 when ``sys.stdout`` is the real stdout; the saved fd 1, else None."""
    if sys.stdout is not sys.__stdout__:  # replaced (a test's capture, a notebook): Python-level is enough
        return None
    try:
        if sys.stdout.fileno() != 1:
            return None
    except (AttributeError, OSError, ValueError):
        return None
    saved = os.dup(1)
    os.dup2(2, 1)
    return saved
