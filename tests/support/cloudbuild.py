"""cloudbuild.yaml on this machine: substitutions resolved as Cloud Build resolves them, a copy
of the repository standing in for /workspace, and steps run with stub commands first on PATH.

    build = load_build()
    values = substitutions(build, {**BUILTINS, "_KFP_HOST": host})
    steps = rendered_steps(build, values)             # id -> step, every $ resolved
    workspace = Workspace.create(tmp_path)            # the repository's files, .venv linked
    done = workspace.run(steps["compile-vlm-ddp"])    # a CompletedProcess

A Python step runs with the workspace first on PYTHONPATH, so it imports the workspace's
sources (the components/images.py its pin step rewrote), not the checkout's; every Python
process it starts may connect only to loopback (tests/support/loopback_site). Stubs are
executables written into the workspace's `bin/`, first on PATH: `gcloud`, `make`, and `python3`
as an interpreter without site-packages, like the Cloud SDK image's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK_SITE = Path(__file__).with_name("loopback_site")
# The built-in substitutions of a triggered build (Cloud Build: "Substituting variable values").
BUILTIN_NAMES = (
    *("PROJECT_ID", "BUILD_ID", "PROJECT_NUMBER", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA"),
    *("REVISION_ID", "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME"),
    *("REF_NAME", "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"),
)
COMMIT = "7c3f9e1" + "0a1b2c3d4e5f" * 2 + "a1b2c3d4e"
BUILTINS = {
    "PROJECT_ID": "liftoff-ci",
    "BUILD_ID": "b7c3f9e1",
    "COMMIT_SHA": COMMIT,
    "SHORT_SHA": COMMIT[:7],
    "LOCATION": "us-central1",
}
# `$$` is a literal `$`; `$NAME` and `${NAME}` are substitutions; any other `$` is an error.
_REFERENCE = re.compile(r"\$(?:\$|\{(?P<braced>[A-Z_][A-Z0-9_]*)\}|(?P<bare>[A-Z_][A-Z0-9_]*))?")


def load_build(path: Path = ROOT / "cloudbuild.yaml") -> dict:
    return yaml.safe_load(path.read_text())


def substitute(text: str, values: dict[str, str]) -> str:
    """`text` with every substitution replaced; KeyError for an undefined one, ValueError for a
    `$` that is neither `$$` nor a substitution."""

    def replace(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match["braced"] or match["bare"]
        if name is None:
            raise ValueError(f"unescaped $ in {text!r}: write $$ for a literal $")
        return values[name]

    return _REFERENCE.sub(replace, text)


def substitutions(build: dict, given: dict[str, str]) -> dict[str, str]:
    """Every value a step can name: built-ins, then the build's defaults (which may name
    built-ins only) overridden by `given`."""
    builtins = {name: given.get(name, "") for name in BUILTIN_NAMES}
    values = dict(builtins)
    for name, default in build.get("substitutions", {}).items():
        values[name] = given[name] if name in given else substitute(str(default), builtins)
    return values


def rendered_steps(build: dict, values: dict[str, str]) -> dict[str, dict]:
    """The steps by id, with substitutions resolved in every string."""
    return {step["id"]: _render(step, values) for step in build["steps"]}


def _render(node, values: dict[str, str]):
    if isinstance(node, str):
        return substitute(node, values)
    if isinstance(node, list):
        return [_render(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _render(value, values) for key, value in node.items()}
    return node


@dataclass(frozen=True)
class Workspace:
    path: Path  # stands in for /workspace

    @classmethod
    def create(cls, parent: Path) -> Workspace:
        """A copy of every file git tracks or would track, with .venv linked to the checkout's."""
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        )
        path = parent / "workspace"
        for name in filter(None, listed.stdout.decode().split("\0")):
            source = ROOT / name
            if source.is_file():  # a file deleted in the working tree is still listed
                (path / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, path / name)
        (path / ".venv").symlink_to(ROOT / ".venv")
        (path / "bin").mkdir()
        return cls(path)

    def stub(self, name: str, script: str) -> None:
        """An executable `bin/NAME` running `script` with this interpreter."""
        target = self.path / "bin" / name
        target.write_text(f"#!{sys.executable}\n{script}")
        target.chmod(0o755)

    def run(self, step: dict, *, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run `step` as Cloud Build would, with /workspace standing for this copy."""
        argv = [step["entrypoint"], *step.get("args", [])] if "entrypoint" in step else step["args"]
        argv = [
            str(self.path) + a[len("/workspace") :] if a.startswith("/workspace/") else a
            for a in argv
        ]
        environ = {**os.environ, **dict(item.split("=", 1) for item in step.get("env", []))}
        environ["PATH"] = os.pathsep.join([str(self.path / "bin"), environ["PATH"]])
        environ["PYTHONPATH"] = os.pathsep.join([str(self.path), str(LOOPBACK_SITE)])
        return subprocess.run(
            argv,
            cwd=self.path / step.get("dir", ""),
            env={**environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=300,
        )
