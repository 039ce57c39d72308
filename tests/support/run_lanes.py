"""Run the whole suite as concurrent pytest lanes (`make test LANES=2`); one exit, one report.

Usage: .venv/bin/python -m tests.support.run_lanes [--lanes N] [--root DIR] [-- PYTEST_ARGS...]

Each lane is a pytest process of its own over its part of the suite (``tests.support.lanes``),
in a process group of its own: a Ctrl-C (or SIGTERM) reaches this runner once and is passed on
once to every lane, which then stops what it started as a lone pytest would. Every line a lane
prints comes out prefixed ``[i]``. ``--junitxml`` and ``--drill-report`` are given to each lane
as a file or folder of its own under ``<parent>/lanes/`` and merged back into the one named when
all lanes are done, so CI and ``bench_ci_series.py`` read one junit.xml and one drill report.
A lane that collects nothing fails the run, as pytest's exit 5 does in ``scripts/run-pytest.sh``.
Lane 0 runs no drill and yields the CPU to the others (``lanes.yields``): its whole process tree
runs in a cpu cgroup of low weight (``tests.support.cpu_share``), removed when the lanes end.
PYTEST_ARGS must be options only: a selection of paths is one lane's job (``--lanes 1``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from chaos_rec.errors import ChaosRecError
from tests.support import cpu_share
from tests.support.lanes import (
    LANE_ENV,
    REPO,
    YIELDING_SHARE,
    env_of,
    lane_paths,
    stack_overrides,
    yields,
)

NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
INTERRUPTED = 130
REWRITTEN = ("--junitxml", "--junit-xml", "--drill-report")  # each lane gets its own
VALUED_SHORT = frozenset("kmpocWr")  # pytest's short options that take the next word as a value


def _takes_value(option: str) -> bool:
    """Whether ``option`` (one word, no ``=``) is read as taking the next word as its value:
    a short one of :data:`VALUED_SHORT`, or a long one (a flag before a path lets the path by)."""
    if option.startswith("--"):
        return "=" not in option
    return option.startswith("-") and option[-1:] in VALUED_SHORT


@dataclass
class Lane:
    """One pytest process of the run: its paths, its own outputs, and how it ended."""

    index: int
    root: Path
    paths: list[str]
    args: list[str]
    env: dict[str, str]
    outputs: dict[str, Path] = field(default_factory=dict)  # option -> this lane's file/folder
    proc: subprocess.Popen[str] | None = None
    seconds: float = 0.0
    yields: bool = False  # runs at lanes.YIELDING_SHARE of the CPU weight (cpu_share)

    @property
    def rc(self) -> int:
        return -1 if self.proc is None or self.proc.returncode is None else self.proc.returncode


def split_outputs(args: list[str], root: Path = REPO) -> tuple[list[str], dict[str, Path]]:
    """PYTEST_ARGS less the output options this runner rewrites, and those options' values."""
    rest: list[str] = []
    outputs: dict[str, Path] = {}
    it = iter(args)
    prev = ""
    for arg in it:
        name, eq, value = arg.partition("=")
        if name in REWRITTEN:
            if not eq:
                value = next(it, "")
            if not value:
                raise ValueError(f"run_lanes: {name} needs a value")
            outputs["--junitxml" if name == "--junit-xml" else name] = Path(value)
            prev = ""
            continue
        positional = not arg.startswith("-") and not _takes_value(prev)
        prev = arg
        if positional and (root / arg.split("::")[0]).exists():
            raise ValueError(
                f"run_lanes: PYTEST_ARGS name a test path ({arg}); run a selection in one lane"
                " (make test LANES=1, or scripts/run-pytest.sh)"
            )
        rest.append(arg)
    return rest, outputs


def plan(
    count: int, args: list[str], environ: dict[str, str], root: Path = REPO
) -> tuple[list[Lane], dict[str, Path]]:
    """The lanes of a run (paths, args with outputs rewritten and a cache dir each, env), and
    the output options to merge their files into."""
    rest, outputs = split_outputs(args, root)
    outputs = {opt: out if out.is_absolute() else root / out for opt, out in outputs.items()}
    lanes = []
    for i, paths in enumerate(lane_paths(count, root)):
        mine = {
            opt: (
                out.parent / "lanes" / f"{out.stem}-{i}{out.suffix}"
                if opt == "--junitxml"
                else out.parent / "lanes" / f"{out.name}-{i}"
            )
            for opt, out in outputs.items()
        }
        lane_args = [*rest, *(f"{opt}={path}" for opt, path in mine.items())]
        if i > 0:
            lane_args += ["-o", f"cache_dir=.pytest_cache/lane{i}"]
        env = {**environ, LANE_ENV: f"{i}/{count}"}
        env.update(env_of(stack_overrides(i, root / f".chaos-rec-lane{i}")))
        lanes.append(Lane(i, root, paths, lane_args, env, mine, yields=yields(i, count)))
    return lanes, outputs


def merge_junit(parts: list[Path], dest: Path) -> None:
    """One junit.xml holding every lane's <testsuite> (named ``pytest lane i``)."""
    merged = ET.Element("testsuites", name="pytest tests")
    for i, part in enumerate(parts):
        if not part.is_file():
            continue
        for suite in ET.parse(part).getroot().iter("testsuite"):
            suite.set("name", f"pytest lane {i}")
            merged.append(suite)
    dest.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(merged).write(dest, encoding="utf-8", xml_declaration=True)


def merge_drill_reports(parts: list[Path], dest: Path) -> int:
    """Move every lane's drill folders into ``dest`` and write its one summary and HTML report;
    the number of drills merged (0 writes nothing)."""
    from chaos_rec.report.files import SUMMARY, drill_dir, load_report, write_session_report

    found = [(part, r) for part in parts if (part / SUMMARY).is_file() for r in load_report(part)]
    names = [r.name for _, r in found]
    for name in names:
        if names.count(name) > 1:  # refused before anything is moved
            raise ValueError(f"run_lanes: drill {name} ran in two lanes")
    for part, record in found:
        src, dst = drill_dir(part, record.name), drill_dir(dest, record.name)
        if src.is_dir():
            shutil.rmtree(dst, ignore_errors=True)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dst)
    records = [r for _, r in found]
    if records:
        write_session_report(dest, records)
    return len(records)


def _pump(lane: Lane, lock: threading.Lock) -> None:
    """Pass the lane's lines on, prefixed; then reap it and take its wall time."""
    assert lane.proc is not None and lane.proc.stdout is not None
    t0 = time.monotonic()
    for line in lane.proc.stdout:
        with lock:
            sys.stdout.write(f"[{lane.index}] {line}")
            sys.stdout.flush()
    lane.proc.wait()
    lane.seconds = time.monotonic() - t0


def run(lanes: list[Lane]) -> bool:
    """Start every lane, pass signals on to their groups, wait; True when interrupted."""
    interrupted = threading.Event()

    def forward(signum: int, _frame: FrameType | None) -> None:
        interrupted.set()
        for lane in lanes:
            if lane.proc is not None and lane.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # its group is gone already
                    os.killpg(lane.proc.pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # an inherited ignore is respected
            signal.signal(signum, forward)
    lock = threading.Lock()
    pumps = []
    groups: list[cpu_share.CpuGroup] = []
    try:
        for lane in lanes:
            print(f"run_lanes: lane {lane.index}: pytest {' '.join(lane.paths)}", flush=True)
            group = _cpu_group(lane) if lane.yields else None
            groups += [group] if group else []
            lane.proc = subprocess.Popen(
                [sys.executable, "-m", "pytest", *lane.paths, *lane.args],
                cwd=lane.root, env=lane.env, text=True, bufsize=1, process_group=0,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                preexec_fn=group.adopt if group else None,
            )  # fmt: skip
            pumps.append(threading.Thread(target=_pump, args=(lane, lock), daemon=True))
            pumps[-1].start()
        for pump in pumps:
            pump.join()
    finally:  # the runner failing must not leave a lane running in its own group
        for lane in lanes:
            if lane.proc is not None and lane.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(lane.proc.pid, signal.SIGKILL)
        for group in groups:
            group.remove()
    return interrupted.is_set()


def _cpu_group(lane: Lane) -> cpu_share.CpuGroup | None:
    """The yielding lane's cpu cgroup, with one line saying its weight or why it has none."""
    made = cpu_share.make(f"chaos-rec-lane{lane.index}-{os.getpid()}", YIELDING_SHARE)
    if isinstance(made, str):
        print(f"run_lanes: lane {lane.index} runs at the full CPU weight: {made}", flush=True)
        return None
    full = cpu_share.FULL[made.control]
    print(
        f"run_lanes: lane {lane.index} yields the CPU: {made.control} {made.weight} of {full}"
        f" ({made.path})", flush=True,
    )  # fmt: skip
    return made


def main(argv: list[str] | None = None) -> int:
    """Plan, run, merge, print one line per lane; exit as the first failing lane did."""
    ap = argparse.ArgumentParser(prog="run_lanes", description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--lanes", type=int, default=2, help="concurrent pytest lanes (default 2)")
    ap.add_argument("--root", type=Path, default=REPO, help="the project (default: this one)")
    ap.add_argument("pytest_args", nargs="*", help="options for every lane (after --)")
    args = ap.parse_args(argv)
    try:
        lanes, outputs = plan(args.lanes, args.pytest_args, dict(os.environ), args.root.resolve())
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    t0 = time.monotonic()
    interrupted = run(lanes)
    wall = time.monotonic() - t0
    merged = True
    for opt, dest in outputs.items():
        parts = [lane.outputs[opt] for lane in lanes]
        try:
            merge_junit(parts, dest) if opt == "--junitxml" else merge_drill_reports(parts, dest)
        except (ValueError, OSError, ET.ParseError, ChaosRecError) as exc:
            print(f"run_lanes: cannot merge the lanes' {opt} into {dest}: {exc}", flush=True)
            merged = False
    for lane in lanes:
        note = " (collected no tests: a failure)" if lane.rc == NO_TESTS else ""
        print(f"run_lanes: lane {lane.index}: exit {lane.rc} in {lane.seconds:.1f}s{note}")
    print(f"run_lanes: {len(lanes)} lane(s) in {wall:.1f}s of wall time", flush=True)
    failed = [lane.rc for lane in lanes if lane.rc != 0] or ([] if merged else [1])
    if failed:  # killed by a signal: 128 + its number, as a shell reports it
        return 1 if failed[0] == NO_TESTS else (128 - failed[0] if failed[0] < 0 else failed[0])
    return INTERRUPTED if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
