"""``chaos-rec halt``: the emergency stop — interrupt the drill in progress, undo every fault."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from chaos_rec.errors import ConfigError
from chaos_rec.settings import SETTINGS, resolve_state_dir

__all__ = ["register"]


def register(subparsers: Any) -> None:
    """Add ``halt`` to the ``chaos-rec`` parser."""
    state = SETTINGS["state_dir"]
    p = subparsers.add_parser(
        "halt",
        help="emergency stop: interrupt the drill in progress and roll back every fault now",
    )
    p.add_argument(
        "--state-dir", type=Path,
        help=f"state folder of the drills (default: {state.env}, else ./{state.default})",
    )  # fmt: skip
    p.add_argument(
        "--drill-stack", type=Path, metavar="FILE",
        help="a deployment file: undo its fault proxy's or links backend's faults too "
        "(default: the reference stack)",
    )  # fmt: skip
    p.set_defaults(func=_halt)


def _halt(args: argparse.Namespace) -> int:
    from chaos_rec import backends
    from chaos_rec.core.guard import halt
    from chaos_rec.core.target import read_deployment_file

    state_dir = resolve_state_dir(args.state_dir)
    if state_dir.exists() and not state_dir.is_dir():
        raise ConfigError(f"state dir {state_dir} is not a folder")
    dep = read_deployment_file(args.drill_stack) if args.drill_stack else None
    done = halt(state_dir, dep.fault_proxy_url() if dep else None)
    if dep is not None:  # a links backend's leftovers (Chaos Mesh objects chaos-rec labelled)
        done += backends.repair_links(dep)
    for line in done:
        print(f"chaos-rec halt: {line}")
    if not done:
        print("chaos-rec halt: nothing to undo")
    return 0
