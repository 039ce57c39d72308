"""A Ctrl-C anywhere in a drill's run is an interrupt, also when Python wrapped it."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from chaos_rec import cli
from chaos_rec.drill import runner


def _lazy_enum_import_interrupted(*_: Any) -> None:
    # what Python 3.11 raises when SIGINT lands while a lazily imported module defines an Enum
    class Interrupting:
        def __set_name__(self, owner: type, name: str) -> None:
            raise KeyboardInterrupt

    type("RunFlowEvent", (), {"RunStarted": Interrupting()})


def test_an_interrupt_wrapped_by_class_creation_surfaces_as_keyboard_interrupt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(runner, "_notify", _lazy_enum_import_interrupted)
    with pytest.raises(KeyboardInterrupt) as caught:
        runner.run_experiment({"title": "t"}, tmp_path, lambda _: None)
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_other_errors_of_the_run_stay_what_they_are(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def broken(*_: Any) -> None:
        raise RuntimeError("notification plugin broke") from ValueError("bad url")

    monkeypatch.setattr(runner, "_notify", broken)
    with pytest.raises(RuntimeError, match="notification plugin broke"):
        runner.run_experiment({"title": "t"}, tmp_path, lambda _: None)


def test_the_cli_exits_130_on_a_wrapped_interrupt(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(_: argparse.Namespace) -> int:
        _lazy_enum_import_interrupted()
        return 0

    parser = argparse.ArgumentParser()
    parser.set_defaults(func=run)
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    assert cli.main([]) == 130
    assert capsys.readouterr().err == "chaos-rec: interrupted\n"
