"""The dependency locks: every range in pyproject.toml is pinned, and the pins satisfy it."""

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins(name: str) -> dict[str, str]:
    """The `name==version` lines of a lock file (markers and comments dropped)."""
    found = {}
    for line in (ROOT / "requirements" / name).read_text().splitlines():
        line = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in line:
            package, version = line.split("==", 1)
            found[canonicalize_name(package.split("[", 1)[0])] = version.strip()
    return found


LOCKS = {
    "runtime.txt": PROJECT["dependencies"],
    "test.txt": PROJECT["dependencies"] + PROJECT["optional-dependencies"]["test"],
}


@pytest.mark.parametrize(("lock", "ranges"), list(LOCKS.items()))
def test_every_declared_dependency_is_pinned_inside_its_range(lock, ranges):
    pinned = pins(lock)
    for spec in ranges:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements/{lock}: run ./scripts/lock"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (
            f"requirements/{lock} pins {name}=={pinned[name]} outside {requirement.specifier}"
        )


def test_the_runtime_lock_holds_no_test_tool():
    runtime = pins("runtime.txt")
    for tool in ("pytest", "schemathesis", "playwright", "ruff"):
        assert tool not in runtime


@pytest.mark.parametrize(("path", "needle"), [
    ("scripts/test", "-c requirements/test.txt"),
    ("Dockerfile", "-c requirements/runtime.txt"),
    ("README.md", "pip install -c requirements/runtime.txt ."),
    (".ci/run", "./scripts/test"),
])
def test_every_install_reads_a_lock(path, needle):
    assert needle in (ROOT / path).read_text()
