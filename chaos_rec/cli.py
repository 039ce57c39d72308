"""The ``chaos-rec`` command: dispatches to the sub-commands' own modules."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from chaos_rec.errors import ChaosRecError, OneLineParser, is_ctrl_c, settle_interrupt

# sub-command name -> module that defines ``register(subparsers)``; each
# registered parser sets ``func`` (args -> exit code).
_SUBCOMMANDS: dict[str, str] = {
    "stack": "chaos_rec.stack.cli",
    "toxiproxy": "chaos_rec.toxiproxy.cli",
    "report": "chaos_rec.report.cli",
    "halt": "chaos_rec.halt",
}


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    from chaos_rec import __version__

    parser = OneLineParser(
        prog="chaos-rec",
        description="Disaster-recovery drills for AI recommender serving.",
    )
    parser.add_argument("--version", action="version", version=f"chaos-rec {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in _SUBCOMMANDS.values():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code (130 on Ctrl-C, at any moment)."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except ChaosRecError as exc:
        print(f"chaos-rec: error: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:
        if not is_ctrl_c(exc):
            raise
        print("chaos-rec: interrupted", file=sys.stderr)
        return settle_interrupt()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
