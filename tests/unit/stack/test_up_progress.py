"""`stack up` feedback: a line per component as it becomes ready, or one live line on a TTY."""

from __future__ import annotations

import io

from chaos_rec.stack.progress import UpProgress
from chaos_rec.stack.state import StackState


def _state(**status: str) -> StackState:
    return StackState(components={n: {"name": n, "status": s} for n, s in status.items()})


def test_plain_lines_name_each_component_once_when_it_is_ready() -> None:
    out = io.StringIO()
    progress = UpProgress(out, live=False)
    progress(_state(redis="starting", toxiproxy="starting"))
    progress(_state(redis="ready", toxiproxy="starting"))
    progress(_state(redis="ready", toxiproxy="ready"))
    progress.done()
    lines = out.getvalue().splitlines()
    assert [ln.split(" ready after")[0] for ln in lines] == [
        "stack up: redis",
        "stack up: toxiproxy",
    ]


def test_a_terminal_gets_one_line_rewritten_in_place() -> None:
    out = io.StringIO()
    progress = UpProgress(out, live=True)
    progress(_state(redis="starting", replica_0="starting"))
    progress(_state(redis="ready", replica_0="starting"))
    progress.done()
    text = out.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    last = text.rstrip("\n").split("\r")[-1]
    assert last.startswith("starting replica_0 · ready redis · ") and last.rstrip().endswith(" s")
