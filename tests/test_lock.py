"""requirements.lock against pyproject.toml and against this interpreter's environment: the lock
pins every requirement within its range, and what the tests run on is what the lock says
(`make lock` rewrites the lock; `make install` installs from it)."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
_PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;]+)")


def locked() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = _PIN.match(line)
        if match:
            pins[canonicalize_name(match.group(1))] = Version(match.group(2))
    return pins


def declared() -> list[tuple[str, Requirement]]:
    """(where, requirement) for every requirement pyproject.toml states."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    found = [("build-system", Requirement(r)) for r in project["build-system"]["requires"]]
    found += [("dependencies", Requirement(r)) for r in project["project"]["dependencies"]]
    for extra, reqs in project["project"]["optional-dependencies"].items():
        found += [(f"[{extra}]", Requirement(r)) for r in reqs]
    return found


def public(version: Version) -> Version:
    """2.13.0+cpu -> 2.13.0: the local CPU wheel is the lock's torch==2.13.0."""
    return Version(version.public)


def test_lock_pins_every_declared_requirement_within_its_range():
    pins = locked()
    assert len(pins) > 100, "the lock should pin the whole transitive closure"
    problems = []
    for where, req in declared():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{where} {req}: not in requirements.lock")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{where} {req}: the lock has {pins[name]}")
    assert not problems, "run `make lock`:\n" + "\n".join(problems)


def test_torch_is_pinned_to_the_release_both_builds_share():
    # Locked as the public version: pip takes the CPU wheel here and the CUDA build in images.
    assert locked()["torch"] == Version("2.13.0")


def _closure(root: str, extras: set[str]) -> dict[str, metadata.Distribution]:
    """Every installed distribution `root[extras]` needs, by canonical name."""
    seen: dict[str, metadata.Distribution] = {}
    todo = [(root, extras)]
    while todo:
        name, wanted = todo.pop()
        dist = metadata.distribution(name)
        key = canonicalize_name(dist.metadata["Name"])
        if key in seen and not wanted:
            continue
        seen[key] = dist
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{**default_environment(), "extra": e} for e in (wanted or {""})]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, set(req.extras)))
    return seen


def test_this_environment_is_installed_from_the_lock():
    dist = metadata.distribution("liftoff")
    extras = set(dist.metadata.get_all("Provides-Extra") or [])
    if not extras:
        pytest.skip("liftoff is not installed with its extras here")
    pins = locked()
    closure = _closure("liftoff", extras)
    closure.pop("liftoff")
    assert len(closure) > 100
    wrong = [
        f"{name} {d.version} (lock: {pins.get(name, 'absent')})"
        for name, d in sorted(closure.items())
        if name not in pins or public(Version(d.version)) != pins[name]
    ]
    assert not wrong, "reinstall with `make install`:\n" + "\n".join(wrong)
