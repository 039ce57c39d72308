"""pytest plugin entry point (``pytest11``): options, ini keys and markers only.

The drill session (collection of experiments, running, rollback guarantee,
reports) lives in :mod:`chaos_rec.drill.session` and is registered here once
the configuration is built.
"""

from __future__ import annotations

import pytest

from chaos_rec.settings import TABLE, Setting

DRILL_MARKER = "drill: a disaster-recovery drill (runs faults against a live stack)"


def _help(s: Setting) -> str:
    where = [f"ini {s.ini}"] if s.ini else []
    where += [f"env {s.env}"] if s.env else []
    where += [f"default {s.default_text()}"] if s.default_text() and s.kind != "bool" else []
    return f"{s.meaning} ({'; '.join(where)})".replace("%", "%%")


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--drill-*`` options and their ini keys (names from ``chaos_rec.settings``)."""
    group = parser.getgroup("chaos-rec", "disaster-recovery drills (chaos-rec)")
    for s in TABLE:
        if s.option is None:
            continue
        if s.kind == "bool":
            group.addoption(
                s.option, dest=s.dest, action="store_true", default=False, help=_help(s)
            )
        else:
            action = "append" if s.kind == "paths" else "store"
            group.addoption(
                s.option, dest=s.dest, action=action, metavar=s.metavar, default=None, help=_help(s)
            )
    for s in TABLE:
        if s.ini is None:
            continue
        shown = f"{s.meaning} (default {s.default_text()})" if s.default_text() else s.meaning
        if s.kind == "paths":  # defaults stay in chaos_rec.settings: unset ini keys are empty
            parser.addini(s.ini, shown, type="linelist", default=[])
        else:
            parser.addini(s.ini, shown, default="")


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker, build the drill config and the drill session."""
    from chaos_rec.drill.items import DrillFile
    from chaos_rec.drill.session import PLUGIN_NAME, DrillSession

    config.addinivalue_line("markers", DRILL_MARKER)
    if config.pluginmanager.has_plugin(PLUGIN_NAME):
        return

    session = DrillSession.from_config(config, DrillFile.from_parent)
    config.pluginmanager.register(session, PLUGIN_NAME)
    # register the module object (not import_plugin): it may already be imported, and
    # import_plugin would then warn that it cannot be assertion-rewritten
    from chaos_rec.drill import fixtures

    if not config.pluginmanager.is_registered(fixtures):
        config.pluginmanager.register(fixtures, "chaos_rec.drill.fixtures")
