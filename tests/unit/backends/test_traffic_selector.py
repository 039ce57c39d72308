"""The selector language: what each form selects, and one-line errors for bad selectors."""

from __future__ import annotations

from typing import Any

import pytest

from chaos_rec.backends.adapters import compile_selector
from chaos_rec.errors import ConfigError
from chaos_rec.traffic.selector import NoMatch

DOC: dict[str, Any] = {
    "items": [{"item_id": 3}, {"item_id": 1}],
    "data": {"recs": [7, 8, 9], "meta-info": {"fallback_tier": "popular"}},
    "outputs": [{"name": "a", "data": [1, 2]}, {"name": "b", "data": [5]}],
}


@pytest.mark.parametrize(
    ("text", "doc", "expected"),
    [
        ("items[*].item_id", DOC, [3, 1]),
        ("data.recs[*]", DOC, [7, 8, 9]),
        ("data.recs", DOC, [[7, 8, 9]]),
        ("data.recs[1]", DOC, [8]),
        ("outputs[1].data[*]", DOC, [5]),
        ("outputs[*].data[*]", DOC, [1, 2, 5]),
        ("data.meta-info.fallback_tier", DOC, ["popular"]),
        ("[*].id", [{"id": 4}, {"id": 6}], [4, 6]),
        ("[0]", [[1, 2]], [[1, 2]]),
    ],
)
def test_selectors_select(text: str, doc: Any, expected: list[Any]) -> None:
    assert compile_selector(text, "traffic.items").select(doc) == expected


@pytest.mark.parametrize(
    "text", ["items[*].nope", "data.recs[5]", "items.item_id", "data[*]", "nothing"]
)
def test_a_selector_that_finds_nothing_is_no_match(text: str) -> None:
    with pytest.raises(NoMatch):
        compile_selector(text, "traffic.items").select(DOC)


def test_one_wants_exactly_one_value() -> None:
    assert compile_selector("data.meta-info.fallback_tier", "w").one(DOC) == "popular"
    with pytest.raises(NoMatch, match="selects 2 values"):
        compile_selector("items[*].item_id", "w").one(DOC)


@pytest.mark.parametrize(
    "text",
    ["items[*", "items[-1]", "items..id", "items.", ".items", "items[*]id", "9items", "a b",
     "$.items", "items[?(@.id)]", "items['x']"],
)  # fmt: skip
def test_bad_selectors_are_one_line_config_errors(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        compile_selector(text, "deployment file d.json: traffic.items")
    message = str(info.value)
    assert message.startswith(f"deployment file d.json: traffic.items: bad selector {text!r}: ")
    assert "\n" not in message


@pytest.mark.parametrize("text", ["", None, 3, ["a"]])
def test_a_selector_must_be_a_non_empty_string(text: Any) -> None:
    with pytest.raises(ConfigError, match=r"^w: a selector must be a non-empty string"):
        compile_selector(text, "w")
