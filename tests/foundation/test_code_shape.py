"""The package stays readable: no function longer than a reader can hold in mind (STYLE.md, ~80 lines)."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

MAX_LINES = 80


def _long_functions(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_LINES:
                    found.append(
                        f"{path.relative_to(root.parent)}:{node.lineno} {node.name} ({length} lines)"
                    )
    return found


def test_no_function_in_the_package_is_longer_than_80_lines():
    too_long = _long_functions(Path(workbench.__file__).parent)
    assert not too_long, "split these functions: " + "; ".join(too_long)


def test_the_check_finds_a_long_function(tmp_path: Path):
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES))
    (package / "long.py").write_text(f"def long():\n{body}\n")
    (package / "short.py").write_text("def short():\n    return 1\n")
    assert [line.split(" ")[1] for line in _long_functions(package)] == ["long"]
