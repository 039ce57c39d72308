"""Process identity checks guard `down` against killing a process that reused a pid."""

from __future__ import annotations

import os

from chaos_rec.stack.procs import is_alive, proc_start_time, same_process


def test_same_process_uses_start_time() -> None:
    me = os.getpid()
    start = proc_start_time(me)
    assert start is not None and is_alive(me)
    assert same_process(me, ["whatever"], start)
    assert not same_process(me, ["whatever"], start + 1)  # pid reused by another process
    assert not same_process(2**22 + 12345, ["x"], None)
