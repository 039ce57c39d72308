"""chaos-rec: disaster-recovery drills for AI recommender serving, run as tests."""

from __future__ import annotations

from typing import Any

__all__ = ["__version__", "discover"]


def __getattr__(name: str) -> Any:
    """``__version__`` is the installed distribution's (read on first use, not at import)."""
    if name != "__version__":
        raise AttributeError(f"module 'chaos_rec' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chaos-rec")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """List every chaos_rec action, probe and control hook for ``chaos discover``."""
    from chaoslib.discovery.discover import (
        discover_actions,
        discover_activities,
        discover_probes,
        initialize_discovery_result,
    )

    from chaos_rec import __version__

    result: dict[str, Any] = initialize_discovery_result("chaos-rec", __version__, "recommender")
    result["activities"].extend(discover_actions("chaos_rec.actions"))
    result["activities"].extend(discover_probes("chaos_rec.probes"))
    hooks = discover_activities("chaos_rec.controls", "control")  # the control's hooks only
    result["activities"].extend(h for h in hooks if str(h["name"]).endswith("_control"))
    for activity in result["activities"]:
        _resolve_types(activity)
    return result


_PORTABLE = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    dict: "mapping",
    list: "list",
    type(None): "null",
}


def _portable(hint: Any) -> str:
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _portable(args[0]) if len(args) == 1 else "object"
    return _PORTABLE.get(origin or hint, "object")


def _resolve_types(activity: dict[str, Any]) -> None:
    """Fill argument/return types from the string annotations (PEP 563) chaoslib cannot read."""
    import importlib
    import typing

    func = getattr(importlib.import_module(activity["mod"]), activity["name"])
    hints = typing.get_type_hints(func)
    for arg in activity.get("arguments", []):
        if arg["name"] in hints:
            arg["type"] = _portable(hints[arg["name"]])
    if "return" in hints:
        activity["return_type"] = _portable(hints["return"])
