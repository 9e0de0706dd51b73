"""Intake: read the photos a person uploads, check each one and the set, and build the aligned training set.

>>> from workbench.intake import IntakeConfig, run_intake
>>> result = run_intake("alice", IntakeConfig(resolution=1024), workspace=ws, photos=["photos/"])
>>> [(p.name, p.accepted, p.reasons) for p in result.photos]
"""

from workbench.intake.checks import Assessment, CheckResult, assess_image
from workbench.intake.config import CHECK_NAMES, IntakeConfig
from workbench.intake.dataset import accepted_originals, load_embeddings, read_references
from workbench.intake.pipeline import IntakeResult, PhotoReport, run_intake
from workbench.intake.reading import Photo, PhotoRejected, decode_photo
from workbench.intake.set_checks import Finding, assess_set

__all__ = [
    "CHECK_NAMES", "Assessment", "accepted_originals", "CheckResult", "Finding", "IntakeConfig", "IntakeResult",
    "Photo", "PhotoRejected", "PhotoReport", "assess_image", "assess_set", "decode_photo", "load_embeddings",
    "read_references", "run_intake",
]  # fmt: skip
