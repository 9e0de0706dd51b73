"""Evaluation: likeness, skin-tone fidelity, AI-detectability and usable yield, per group, with CIs.

Modules, in the order a run uses them: ``config`` (EvalConfig), ``testsets`` / ``ladder`` (what to evaluate),
``analyse`` (one face pass per image), ``likeness``, ``skin``, ``detect`` / ``human`` / ``provenance``,
``ranking``, ``groups`` and ``stats`` (CIs), ``report``, and ``suite`` which runs them all.
"""

from workbench.evaluate.compare import CompareResult, compare_runs
from workbench.evaluate.config import EvalConfig
from workbench.evaluate.suite import Check, EvalResult, ReportFiles, load_suite, run_eval

__all__ = [
    "Check",
    "CompareResult",
    "compare_runs",
    "EvalConfig",
    "EvalResult",
    "ReportFiles",
    "load_suite",
    "run_eval",
]
