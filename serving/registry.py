"""The local model registry: the local target's stand-in for the Vertex AI Model Registry.

    registry = LocalRegistry(".liftoff/registry")
    v = registry.register("llm-finetune-debug", "path/to/model", metrics={...}, lineage={...})
    registry.resolve("llm-finetune-debug@latest").model_dir      # also NAME, NAME@3

Layout: `<root>/<name>/<version>/model/` (a copy of the model directory, so the registry outlives
the pipeline run's scratch space), `<root>/<name>/<version>/version.json` (metrics, labels,
lineage, deployments) and `<root>/<name>/aliases.json` (alias -> version). Versions count up
from 1 per name; a new version takes `latest` and any other aliases it is given.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")  # Vertex's version-alias rule


@dataclass(kw_only=True)
class ModelVersion:
    name: str
    version: int
    model_dir: str
    created: str
    aliases: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)
    deployments: list[dict] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class LocalRegistry:
    def __init__(self, root: str) -> None:
        self.root = root

    def register(
        self,
        name: str,
        model_dir: str,
        *,
        metrics: dict,
        labels: dict | None = None,
        lineage: dict | None = None,
        aliases: list[str] = (),
    ) -> ModelVersion:
        """Copy `model_dir` in as the next version of `name`."""
        _check_name(name)
        for alias in aliases:
            _check_alias(alias)
        if not os.path.isfile(os.path.join(model_dir, "config.json")):
            raise ValueError(f"{model_dir}: not a model directory (no config.json)")
        number, home = self._new_version_dir(name)
        shutil.copytree(model_dir, os.path.join(home, "model"))
        version = ModelVersion(
            name=name,
            version=number,
            model_dir=os.path.join(home, "model"),
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            metrics=metrics,
            labels=labels or {},
            lineage=lineage or {},
        )
        self._write(version)
        self._set_aliases(name, number, ["latest", *aliases])
        return self.resolve(version.ref)

    def resolve(self, ref: str) -> ModelVersion:
        """NAME (latest), NAME@VERSION or NAME@ALIAS."""
        name, _, which = ref.partition("@")
        which = which or "latest"
        if not os.path.isdir(os.path.join(self.root, name)):
            known = ", ".join(self.names()) or "none registered"
            raise ValueError(f"model {name!r} is not in the registry {self.root} ({known})")
        aliases = self._aliases(name)
        number = int(which) if which.isdigit() else aliases.get(which)
        path = os.path.join(self.root, name, str(number), "version.json")
        if number is None or not os.path.isfile(path):
            raise ValueError(f"{ref}: no such version or alias of {name}")
        with open(path) as f:
            data = json.load(f)
        data["aliases"] = sorted(a for a, n in aliases.items() if n == number)
        return ModelVersion(**data)

    def names(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(n for n in os.listdir(self.root) if NAME.match(n))

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        names = [name] if name else self.names()
        found = []
        for n in names:
            numbers = sorted(int(d) for d in os.listdir(os.path.join(self.root, n)) if d.isdigit())
            found += [self.resolve(f"{n}@{v}") for v in numbers]
        return found

    def record_deployment(self, ref: str, deployment: dict) -> ModelVersion:
        version = self.resolve(ref)
        version.deployments.append(deployment)
        self._write(version)
        return version

    def _new_version_dir(self, name: str) -> tuple[int, str]:
        base = os.path.join(self.root, name)
        os.makedirs(base, exist_ok=True)
        while True:  # mkdir is atomic, so two concurrent registrations get different numbers
            number = 1 + max((int(d) for d in os.listdir(base) if d.isdigit()), default=0)
            try:
                os.mkdir(os.path.join(base, str(number)))
                return number, os.path.join(base, str(number))
            except FileExistsError:
                continue

    def _write(self, version: ModelVersion) -> None:
        data = dataclasses.asdict(version)
        data["aliases"] = []  # aliases move between versions; aliases.json is the truth
        home = os.path.join(self.root, version.name, str(version.version))
        _write_json(os.path.join(home, "version.json"), data)

    def _aliases(self, name: str) -> dict[str, int]:
        path = os.path.join(self.root, name, "aliases.json")
        if not os.path.isfile(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def _set_aliases(self, name: str, number: int, aliases: list[str]) -> None:
        table = self._aliases(name) | dict.fromkeys(aliases, number)
        _write_json(os.path.join(self.root, name, "aliases.json"), table)


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)  # readers never see a half-written file


def _check_name(name: str) -> None:
    if not NAME.match(name):
        raise ValueError(f"model name {name!r}: use lowercase letters, digits, '.', '_', '-'")


def _check_alias(alias: str) -> None:
    if not ALIAS.match(alias) or alias.isdigit():
        raise ValueError(f"alias {alias!r}: must match [a-z][a-zA-Z0-9-]*[a-z0-9]")
