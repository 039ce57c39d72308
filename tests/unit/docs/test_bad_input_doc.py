"""docs/bad-input.md: every row of its table names at least one test, and each named test exists.

A named test is ``tests/<path>.py::<function>`` (or ``::<Class>::<method>``, with an optional
``[parameter id]``); it exists when the file parses and defines that test function, read with
``ast`` (no import, no collection: the check costs milliseconds).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "bad-input.md"
COLUMNS = ("entry point", "bad input", "what the user sees", "what stays unchanged", "test")
NODE_ID = re.compile(r"(tests/[\w/]+\.py)((?:::\w+)+)(?:\[[^\]`]*\])?")


def table_rows(text: str) -> list[list[str]]:
    """The table's rows as cells (header and separator left out); ``\\|`` is not a separator."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith("|")]
    rows = [[c.strip() for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines]
    if not rows or tuple(rows[0]) != COLUMNS:
        raise AssertionError(f"the table's header must be {' | '.join(COLUMNS)}")
    return rows[2:]


def _defines(path: Path, names: list[str]) -> bool:
    scope: list[ast.stmt] = ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body
    for i, name in enumerate(names):
        found = next(
            (n for n in scope if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
             and n.name == name),
            None,
        )  # fmt: skip
        if found is None:
            return False
        if i == len(names) - 1:
            return isinstance(found, ast.FunctionDef | ast.AsyncFunctionDef) and name.startswith(
                "test"
            )
        scope = found.body
    return False


def problems(text: str, root: Path = ROOT) -> list[str]:
    """What is wrong with the table: a row of the wrong width, without a test, or naming one
    that does not exist."""
    found: list[str] = []
    for number, cells in enumerate(table_rows(text), start=1):
        label = (
            f"row {number} ({cells[0] if cells else '?'}: {cells[1] if len(cells) > 1 else '?'})"
        )
        if len(cells) != len(COLUMNS):
            found.append(f"{label}: {len(cells)} cells, not {len(COLUMNS)}")
            continue
        ids = NODE_ID.findall(cells[-1])
        if not ids:
            found.append(f"{label}: names no test")
        for file, names in ids:
            path = root / file
            node = f"{file}{names}"
            if not path.is_file():
                found.append(f"{label}: {node}: no such file")
            elif not _defines(path, names.strip(":").split("::")):
                found.append(f"{label}: {node}: no such test")
    return found


def test_every_row_names_a_test_that_exists() -> None:
    rows = table_rows(DOC.read_text(encoding="utf-8"))
    assert len(rows) >= 30
    assert problems(DOC.read_text(encoding="utf-8")) == []


def test_the_check_finds_a_missing_test_file_function_and_cell(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text(
        "def test_here():\n    pass\n\n\nclass TestGroup:\n    def test_inside(self):\n        pass\n"
        "\n\ndef helper():\n    pass\n"
    )
    header = "| " + " | ".join(COLUMNS) + " |\n| --- | --- | --- | --- | --- |\n"
    doc = header + "".join(
        f"| door | {bad} | line | all | {test} |\n"
        for bad, test in [
            ("good", "`tests/test_x.py::test_here[case-1]`"),
            ("in a class", "`tests/test_x.py::TestGroup::test_inside`"),
            ("no test", "to do"),
            ("gone", "`tests/test_x.py::test_gone`"),
            ("not a test", "`tests/test_x.py::helper`"),
            ("no file", "`tests/test_y.py::test_here`"),
        ]
    )
    doc += "| door | narrow | test |\n"
    assert problems(doc, tmp_path) == [
        "row 3 (door: no test): names no test",
        "row 4 (door: gone): tests/test_x.py::test_gone: no such test",
        "row 5 (door: not a test): tests/test_x.py::helper: no such test",
        "row 6 (door: no file): tests/test_y.py::test_here: no such file",
        "row 7 (door: narrow): 3 cells, not 5",
    ]
