"""The workspace: the one owner of everything written about a subject.

``layout`` says where things live; ``loras``, ``generations`` and ``evaluations`` are the one reader and writer of
each kind of run folder a stage leaves for the next; ``lifecycle`` erases a subject (``forget``) and enforces
retention. Stages and front ends go through these modules instead of globbing folders themselves.
"""

from workbench.workspace.layout import (
    CACHE_ENV_VAR,
    DEFAULT_DIR,
    ENV_VAR,
    Workspace,
    validate_run_name,
    validate_subject_id,
)

__all__ = [
    "CACHE_ENV_VAR", "DEFAULT_DIR", "ENV_VAR", "Workspace", "validate_run_name", "validate_subject_id",
]  # fmt: skip
