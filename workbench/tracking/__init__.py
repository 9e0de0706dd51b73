"""MLflow tracking: an embedded store inside the workspace by default, one run per stage call."""

from workbench.tracking.runs import (
    EXPERIMENT_ENV_VAR,
    SUBJECT_TAG,
    configure_tracking,
    log_json,
    stage_run,
    tracking_uri,
)

__all__ = ["EXPERIMENT_ENV_VAR", "SUBJECT_TAG", "configure_tracking", "log_json", "stage_run", "tracking_uri"]
