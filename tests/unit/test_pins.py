"""Every dependency the two environments declare is pinned, and each pin satisfies its declaration.

`make venv` installs with constraints.txt and `make venv-triton` with deploy/triton/constraints.txt
as pip constraints (`-c`): a package named there installs at exactly that version. A dependency
added to pyproject.toml or deploy/triton/requirements.txt without a pin would float again, and a
release upstream could turn a green commit red between two clean-clone runs (redis 8.2.0 did).
Read as text (tomllib, packaging): no install, no network.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
TRITON = "deploy/triton/constraints.txt"


def makefile_installs() -> dict[str, list[str]]:
    """The Makefile's package installs (``pip install -q`` lines, not pip itself) per environment,
    keyed by the constraints file that environment must use."""
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    installs: dict[str, list[str]] = {"constraints.txt": [], TRITON: []}
    for line in (ln.strip() for ln in makefile.splitlines()):
        if "pip install -q" in line and "--upgrade pip" not in line:
            installs[TRITON if "VENV_TRITON" in line else "constraints.txt"].append(line)
    return installs


def named_on_the_command_line(constraints: str) -> list[Requirement]:
    """``name==version`` words of the Makefile's installs (torch, the --no-deps wheels)."""
    words = (w for line in makefile_installs()[constraints] for w in line.split())
    return [Requirement(w) for w in words if "==" in w and not w.startswith("-")]


def pins(path: Path) -> dict[str, Version]:
    """``name==version`` lines of a constraints file, by canonical name; anything else is an error."""
    found: dict[str, Version] = {}
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep or not version:
            raise AssertionError(f"{path.name}:{n}: {raw!r} is not name==version")
        found[canonicalize_name(name)] = Version(version)
    return found


def pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared.extend(extra)
    own = canonicalize_name(project["name"])
    reqs = [Requirement(r) for r in declared]
    return [r for r in reqs if canonicalize_name(r.name) != own]


def triton_requirements() -> list[Requirement]:
    text = (ROOT / "deploy" / "triton" / "requirements.txt").read_text(encoding="utf-8")
    lines = (ln.split("#", 1)[0].strip() for ln in text.splitlines())
    return [Requirement(ln) for ln in lines if ln]


ENVIRONMENTS = {
    "constraints.txt": pyproject_requirements,
    TRITON: triton_requirements,
}


@pytest.mark.parametrize("constraints", sorted(ENVIRONMENTS))
def test_every_declared_dependency_is_pinned_within_its_declaration(constraints: str) -> None:
    pinned = pins(ROOT / constraints)
    named = named_on_the_command_line(constraints)
    assert named, f"the Makefile pins nothing by name for {constraints} (torch is first)"
    declared = ENVIRONMENTS[constraints]() + named
    unpinned = [str(r) for r in declared if canonicalize_name(r.name) not in pinned]
    assert not unpinned, f"{constraints} pins none of {unpinned}: pip would take the newest release"
    outside = [
        f"{r} (pinned {pinned[canonicalize_name(r.name)]})"
        for r in declared
        if not r.specifier.contains(pinned[canonicalize_name(r.name)], prereleases=True)
    ]
    assert not outside, f"{constraints} pins versions its declarations exclude: {outside}"


def test_pins_rejects_a_line_that_is_not_an_exact_pin(tmp_path: Path) -> None:
    loose = tmp_path / "constraints.txt"
    loose.write_text("# header\nredis==8.2.0\nnumpy<2\n", encoding="utf-8")
    with pytest.raises(AssertionError, match=r"constraints.txt:3: 'numpy<2' is not name==version"):
        pins(loose)


def test_the_makefile_installs_each_environment_with_its_constraints() -> None:
    installs = makefile_installs()
    assert all(installs.values()), f"an environment has no pip installs in the Makefile: {installs}"
    for constraints, lines in installs.items():
        for line in lines:
            assert f"-c {constraints}" in line, (
                f"Makefile installs without `-c {constraints}`: {line}"
            )
