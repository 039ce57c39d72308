"""pytest plugin entry point (``pytest11``): options, ini keys and markers only.

The drill session (collection of experiments, running, rollback guarantee,
reports) lives in :mod:`chaos_rec.drill.session` and is registered here once
the configuration is built.
"""

from __future__ import annotations

import pytest

DRILL_MARKER = "drill: a disaster-recovery drill (runs faults against a live stack)"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add the ``--drill-*`` options and their ini keys."""
    group = parser.getgroup("chaos-rec", "disaster-recovery drills (chaos-rec)")
    group.addoption(
        "--drill-path",
        action="append",
        dest="drill_paths",
        metavar="PATH",
        default=None,
        help="folder or file of Chaos Toolkit experiments to collect as drills (repeatable; "
        "ini drill_paths, default: experiments)",
    )
    group.addoption(
        "--drill-stack",
        dest="drill_stack",
        metavar="reference|FILE",
        default=None,
        help="target: the reference stack (default) or a deployment file (ini drill_stack)",
    )
    group.addoption(
        "--drill-report",
        dest="drill_report",
        metavar="DIR",
        default=None,
        help="write journals, timelines and one HTML report into DIR (ini drill_report)",
    )
    group.addoption(
        "--drill-seed",
        dest="drill_seed",
        metavar="N",
        default=None,
        help="seed for load and fault randomness (ini drill_seed)",
    )
    group.addoption(
        "--drill-dry",
        dest="drill_dry",
        action="store_true",
        default=False,
        help="validate the drills and show their plans; inject nothing",
    )
    group.addoption(
        "--drill-slo",
        dest="drill_slo",
        metavar="FILE",
        default=None,
        help="SLO spec (JSON/TOML) for drills without their own (ini drill_slo)",
    )
    group.addoption(
        "--drill-baseline",
        dest="drill_baseline",
        metavar="DIR",
        default=None,
        help="a previous --drill-report DIR: fail drills whose figures regressed beyond "
        "drill_baseline_tolerance",
    )
    parser.addini(
        "drill_paths",
        "experiment folders collected as drills",
        type="linelist",
        default=["experiments"],
    )
    parser.addini("drill_stack", "reference, or a deployment file", default="")
    parser.addini("drill_report", "report folder", default="")
    parser.addini("drill_seed", "seed for load and faults", default="")
    parser.addini("drill_slo", "default SLO spec file", default="")
    parser.addini("drill_baseline", "baseline report folder", default="")
    parser.addini(
        "drill_baseline_tolerance", "relative regression tolerance (0.10 = 10%)", default="0.10"
    )
    parser.addini("drill_state_dir", "chaos-rec state dir (default .chaos-rec)", default="")
    parser.addini("drill_load_rps", "load for Python drills: requests per second", default="20")
    parser.addini("drill_load_users", "load for Python drills: concurrent users", default="8")


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
