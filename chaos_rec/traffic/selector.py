"""A tiny selector language to pick values out of a JSON answer (no JSONPath dependency).

A selector is steps joined by dots; each step is a key, optionally followed by indexes::

    items[*].item_id      every item's ``item_id``
    data.recs[*]          every element of ``data.recs``
    data.recs             ``data.recs`` itself (a list, for item ids)
    outputs[0].data[*]    the first output's data
    [*].id                every element of a top-level list, its ``id``
    meta.fallback         one value

A key is letters, digits, ``_`` and ``-`` (not starting with a digit or ``-``); an index is a
non-negative integer or ``*`` (every element). Nothing else is allowed: no filters, no
recursive descent, no quoting. A selector that does not parse is a one-line ConfigError.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any, Final

from chaos_rec.errors import ConfigError

__all__ = ["NoMatch", "Selector", "compile_selector"]

_KEY: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_INDEX: Final = re.compile(r"\[(\*|[0-9]+)\]")
WILD: Final = -1  # the ``*`` index


class NoMatch(Exception):
    """The answer has nothing where the selector points (a malformed answer, not our error)."""


@dataclass(frozen=True)
class Selector:
    """A parsed selector: steps of a key (str) or an index (int, ``WILD`` for ``*``)."""

    text: str
    steps: tuple[str | int, ...]

    @property
    def many(self) -> bool:
        """True when a ``[*]`` step can select several values."""
        return WILD in self.steps

    def select(self, data: Any) -> list[Any]:
        """Every value the selector points at (NoMatch when a step finds nothing)."""
        found = [data]
        for step in self.steps:
            found = [v for node in found for v in _step(node, step, self.text)]
        return found

    def one(self, data: Any) -> Any:
        """The one value the selector points at (NoMatch when there is none)."""
        return _one_of(self.select(data), self.text)


def _one_of(found: list[Any], text: str) -> Any:
    if len(found) != 1:
        raise NoMatch(f"{text} selects {len(found)} values, not one")
    return found[0]


def _step(node: Any, step: str | int, text: str) -> list[Any]:
    if isinstance(step, str):
        if not isinstance(node, dict) or step not in node:
            raise NoMatch(f"{text}: no key {step!r}")
        return [node[step]]
    if not isinstance(node, list):
        raise NoMatch(f"{text}: not a list where an index is")
    if step == WILD:
        return list(node)
    if step >= len(node):
        raise NoMatch(f"{text}: index {step} out of range")
    return [node[step]]


@functools.lru_cache(maxsize=256)
def _parse(text: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    pos, expect_key = 0, not text.startswith("[")
    while pos < len(text):
        if expect_key:
            key = _KEY.match(text, pos)
            if key is None:
                raise ValueError(f"a key expected at position {pos}")
            steps.append(key.group())
            pos = key.end()
        while (index := _INDEX.match(text, pos)) is not None:
            steps.append(WILD if index.group(1) == "*" else int(index.group(1)))
            pos = index.end()
        if pos < len(text):
            if text[pos] != "." or pos + 1 == len(text):
                raise ValueError(f"unexpected {text[pos]!r} at position {pos}")
            pos, expect_key = pos + 1, True
    return tuple(steps)


def compile_selector(text: object, where: str) -> Selector:
    """Parse ``text``; a ConfigError naming ``where`` when it is not a selector."""
    if not isinstance(text, str) or not text:
        raise ConfigError(f"{where}: a selector must be a non-empty string, got {text!r}")
    try:
        steps = _parse(text)
    except ValueError as exc:
        raise ConfigError(
            f"{where}: bad selector {text!r}: {exc} (keys joined by '.', indexes [0] or [*])"
        ) from None
    return Selector(text, steps)
