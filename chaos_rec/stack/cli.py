"""``chaos-rec stack up|down|status``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chaos_rec.errors import StackNotRunning
from chaos_rec.settings import SETTINGS
from chaos_rec.stack.api import down, load_state, up
from chaos_rec.stack.config import StackConfig
from chaos_rec.stack.progress import UpProgress
from chaos_rec.stack.state import StackState

__all__ = ["register"]

_STATE_DIR = SETTINGS["state_dir"]
_STATE_DIR_HELP = f"state folder (default: {_STATE_DIR.env}, else ./{_STATE_DIR.default})"


def register(subparsers: Any) -> None:
    """Add ``stack up|down|status`` to the ``chaos-rec`` parser."""
    stack = subparsers.add_parser("stack", help="start, inspect and stop the reference stack")
    sub = stack.add_subparsers(dest="stack_command", metavar="ACTION")
    sub.required = True

    p_up = sub.add_parser("up", help="start the stack and return once every part is ready")
    p_up.add_argument("--config", type=Path, help="config file (TOML or JSON)")
    p_up.add_argument("--state-dir", type=Path, help=_STATE_DIR_HELP)
    p_up.add_argument("--replicas", type=int, help="model-server replicas (default 2)")
    p_up.add_argument("--base-port", type=int, help="first port of the stack (default 17300)")
    p_up.add_argument("--toxiproxy-port", type=int, help="fault-proxy API port (default 8474)")
    p_up.add_argument("--toxiproxy-url", help="use this external fault proxy")
    p_up.add_argument("--bundle", type=Path, help="model bundle folder")
    p_up.add_argument("--seed", type=int, help="random seed for the fault proxy")
    p_up.add_argument(
        "--no-gateway", dest="gateway", action="store_false", default=None, help="no gateway"
    )
    p_up.add_argument(
        "--no-toxiproxy",
        dest="toxiproxy",
        action="store_false",
        default=None,
        help="no fault proxy (replicas and gateway talk directly)",
    )
    p_up.set_defaults(func=_up)

    p_down = sub.add_parser("down", help="stop the stack; leaves no process and no port")
    p_down.add_argument("--state-dir", type=Path, help=_STATE_DIR_HELP)
    p_down.set_defaults(func=_down)

    p_status = sub.add_parser("status", help="show the stack's processes and endpoints")
    p_status.add_argument("--state-dir", type=Path, help=_STATE_DIR_HELP)
    p_status.add_argument("--json", action="store_true", help="print the state file as JSON")
    p_status.set_defaults(func=_status)


def _up(args: argparse.Namespace) -> int:
    config = StackConfig.load(
        args.config,
        state_dir=args.state_dir,
        replicas=args.replicas,
        base_port=args.base_port,
        toxiproxy_port=args.toxiproxy_port,
        toxiproxy_url=args.toxiproxy_url,
        bundle=args.bundle,
        seed=args.seed,
        gateway=args.gateway,
        toxiproxy=args.toxiproxy,
    )
    progress = UpProgress()
    try:
        state = up(config, on_progress=progress)
    finally:
        progress.done()
    print(_table(state))
    return 0


def _down(args: argparse.Namespace) -> int:
    down(args.state_dir)
    print("stack down")
    return 0


def _status(args: argparse.Namespace) -> int:
    try:
        state = load_state(args.state_dir, require_live=False)
    except StackNotRunning as exc:
        if args.json:
            print(json.dumps({"running": False, "error": str(exc)}))
        else:
            print(f"stack not running: {exc}")
        return 3
    try:
        load_state(args.state_dir)
    except StackNotRunning as exc:
        print(f"chaos-rec: warning: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps(state, indent=1))
        return 3
    print(json.dumps(state, indent=1) if args.json else _table(state))
    return 0


def _table(state: StackState) -> str:
    rows = [f"stack {state.get('stack_id')} ({state.get('phase')}) in {state.state_dir}"]
    for c in state.components():
        eps = " ".join(f"{k}={v}" for k, v in c["endpoints"].items())
        rows.append(
            f"  {c['name']:<11} {c['status']:<10} pid={c['pid']!s:<8} restarts={c['restarts']} {eps}"
        )
    for key in ("toxiproxy_url", "gateway_url", "prometheus_url", "holdout"):
        if state.get(key):
            rows.append(f"  {key}: {state[key]}")
    rows += [f"  note: {note}" for note in state.get("notes") or []]
    return "\n".join(rows)
