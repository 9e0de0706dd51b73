"""Regenerate the table in docs/reliability.md from the fault-and-abuse tests (pytest marker ``abuse``).

    python scripts/reliability.py                 # run `pytest -m abuse`, then rewrite the table
    python scripts/reliability.py --junit r.xml   # only rewrite it from an earlier run's JUnit XML

Each abuse test may say what it tried with pytest's ``record_property``:

    record_property("reliability.faults", 3)      # faults injected (kill -9, torn writes, moved folders, ...)
    record_property("reliability.bad_inputs", 61) # bad inputs tried (configs, files, names, ...)
    record_property("reliability.tracebacks", 0)  # Python tracebacks seen where one sentence was due
    record_property("reliability.data_lost", 0)   # records or files lost
    record_property("reliability.leaks", 0)       # files, runs or tags of a subject left after forget

A row is one test module (its docstring's first line says what it covers); a failed test is counted in the
last column, so a regression shows in the table even when it records nothing.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- reliability:begin -->", "<!-- reliability:end -->"
COLUMNS = {
    "faults": "faults injected",
    "bad_inputs": "bad inputs tried",
    "tracebacks": "tracebacks seen (goal 0)",
    "data_lost": "data lost (goal 0)",
    "leaks": "leaks after forget (goal 0)",
}


def run_pytest(junit: Path, extra: list[str]) -> int:
    # xunit1: the JUnit flavour that keeps record_property() values per test case.
    command = [sys.executable, "-m", "pytest", "-m", "abuse", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
               f"--junitxml={junit}", *extra]  # fmt: skip
    return subprocess.run(command, cwd=ROOT).returncode


def tally(junit: Path) -> dict[str, dict[str, int]]:
    """Per test module: tests, passed/failed/skipped and the summed ``reliability.*`` properties."""
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for case in ET.parse(junit).getroot().iter("testcase"):
        module = _module_path(case)
        row = rows[module]
        row["tests"] += 1
        outcome = "failed" if case.find("failure") is not None or case.find("error") is not None else (
            "skipped" if case.find("skipped") is not None else "passed")  # fmt: skip
        row[outcome] += 1
        for prop in case.iter("property"):
            name = prop.get("name", "")
            if name.startswith("reliability."):
                row[name.removeprefix("reliability.")] += int(float(prop.get("value", "0")))
    return rows


def _module_path(case: ET.Element) -> str:
    # classname is "tests.privacy.test_forget_team" (or "...test_x.TestClass"): keep the module's path.
    parts = case.get("classname", "").split(".")
    while parts and not parts[-1].startswith("test_"):
        parts.pop()
    return "/".join(parts) + ".py" if parts else case.get("classname", "?")


def describe(module: str) -> str:
    path = ROOT / module
    try:
        doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    except (OSError, SyntaxError):
        doc = ""
    paragraph = doc.strip().split("\n\n")[0]
    return " ".join(line.strip() for line in paragraph.splitlines()) or module


def table(rows: dict[str, dict[str, int]]) -> str:
    header = ["tests (module)", "what it covers", "passed", *COLUMNS.values(), "failed (goal 0)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    totals: dict[str, int] = defaultdict(int)
    for module in sorted(rows):
        row = rows[module]
        for key in ("passed", *COLUMNS, "failed"):
            totals[key] += row.get(key, 0)
        cells = [f"`{module}`", describe(module), f"{row.get('passed', 0)}/{row['tests']}",
                 *(str(row.get(k, 0)) for k in COLUMNS), str(row.get("failed", 0))]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    n = sum(r["tests"] for r in rows.values())
    lines.append("| **all** | | " + " | ".join(
        [f"{totals['passed']}/{n}", *(str(totals[k]) for k in COLUMNS), str(totals["failed"])]) + " |")  # fmt: skip
    return "\n".join(lines)


def write(doc: Path, text: str) -> None:
    current = doc.read_text()
    start, end = current.index(BEGIN) + len(BEGIN), current.index(END)
    doc.write_text(current[:start] + "\n" + text + "\n" + current[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--junit", type=Path, help="read this JUnit XML instead of running pytest")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    status = 0
    if args.junit is None:
        junit = Path(tempfile.mkdtemp()) / "abuse.xml"
        status = run_pytest(junit, args.pytest_args)
    else:
        junit = args.junit
    suite = ET.parse(junit).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    stamp = (suite.get("timestamp") or "")[:16].replace("T", " ") if suite is not None else ""
    seconds = float(suite.get("time", 0)) if suite is not None else 0.0
    text = (
        table(tally(junit))
        + f"\n\n_Generated from `pytest -m abuse` run at {stamp} ({seconds / 60:.1f} min)._"
    )
    write(args.doc, text)
    print(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
