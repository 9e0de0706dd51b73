"""Studies: many identities x identity methods x seeds, each cell a Ray task, reported per group with CIs.

``run_study(StudyConfig.from_yaml(path), workspace)`` is what ``workbench study FILE`` calls.
"""

from workbench.study.config import CellConfig, StudyConfig, expand
from workbench.study.runner import StudyResult, run_study

__all__ = ["CellConfig", "StudyConfig", "StudyResult", "expand", "run_study"]
