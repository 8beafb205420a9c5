"""The local model registry: the local target's stand-in for the Vertex AI Model Registry.

    registry = LocalRegistry(".liftoff/registry")
    v = registry.register("llm-finetune", "path/to/model", metrics={...}, lineage={...})
    registry.resolve("llm-finetune@latest").model_dir        # also NAME, NAME@3, NAME@prod
    registry.set_alias("llm-finetune@2", "prod")             # moves prod from wherever it was
    registry.delete_alias("llm-finetune@2", "prod")

Layout: `<root>/<name>/<version>/model/` (a copy of the model directory, so the registry
outlives the pipeline run's scratch space), `<root>/<name>/<version>/version.json` (metrics,
labels, lineage, deployments; written last, so a version without it is still being registered
and is not listed), `<root>/<name>/aliases.json` (alias -> version) and `<root>/<name>/.lock`.
Paths are stored relative to the version's directory, so a copied or moved registry serves its
own copy. Versions count up from 1 per name (mkdir is atomic: concurrent registrations get
different numbers); every change to a name's aliases or versions holds its lock, so two
processes never lose each other's writes. A new version takes `latest`, unless a version
registered at the same time with a higher number already has it, and the aliases it is given.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")  # Vertex's version-alias rule
LATEST = "latest"
MODEL = "model"  # the model copy, inside a version's directory
# What makes a directory a model: an HF one's config.json, or the marker of a saved ARR-COC
# model (trainers.arr_coc.saved.MARKER, written last; its base model is an HF directory inside).
MODEL_MARKERS = ("config.json", "arr_coc.json")
VERSION_FILE = "version.json"


@dataclass(kw_only=True)
class ModelVersion:
    name: str
    version: int
    model_dir: str  # absolute, wherever the registry is now
    created: str
    aliases: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    lineage: dict = field(default_factory=dict)
    deployments: list[dict] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def parse_ref(ref: str) -> tuple[str, str]:
    """(name, version number or alias) of NAME, NAME@VERSION or NAME@ALIAS."""
    name, at, which = ref.partition("@")
    check_name(name)
    if not at:
        return name, LATEST
    if which.isdigit() and int(which) > 0:
        return name, str(int(which))
    if not ALIAS.match(which) or which.isdigit():
        raise ValueError(
            f"{ref!r}: after '@' comes a version (1, 2, ...) or an alias; {which!r} is neither"
        )
    return name, which


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
        check_name(name)
        for alias in aliases:
            check_alias(alias)
        if not any(os.path.isfile(os.path.join(model_dir, m)) for m in MODEL_MARKERS):
            raise ValueError(
                f"{model_dir}: not a model directory (no {' or '.join(MODEL_MARKERS)})"
            )
        number, home = self._new_version_dir(name)
        try:
            shutil.copytree(model_dir, os.path.join(home, MODEL))
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)  # not half a version; its number stays used
            raise
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        record = {"created": created, "metrics": metrics, "labels": labels or {}}
        record |= {"lineage": lineage or {}, "deployments": []}
        with self._locked(name):
            self._write(name, number, record)
            table = self._aliases(name)
            if table.get(LATEST, 0) < number:
                table[LATEST] = number
            self._write_aliases(name, table | dict.fromkeys(aliases, number))
        return self.resolve(f"{name}@{number}")

    def resolve(self, ref: str) -> ModelVersion:
        """NAME (latest), NAME@VERSION or NAME@ALIAS."""
        name, which = parse_ref(ref)
        if not os.path.isdir(os.path.join(self.root, name)):
            known = ", ".join(self.names()) or "none registered"
            raise ValueError(f"model {name!r} is not in the registry {self.root} ({known})")
        aliases = self._aliases(name)
        number = int(which) if which.isdigit() else aliases.get(which)
        if number is None or number not in self._numbers(name):
            versions = ", ".join(map(str, self._numbers(name))) or "none"
            named = ", ".join(sorted(aliases)) or "none"
            raise ValueError(
                f"{ref}: no such version or alias of {name} (versions: {versions}; "
                f"aliases: {named})"
            )
        return self._load(name, number, aliases)

    def names(self) -> list[str]:
        if not os.path.isdir(self.root):
            return []
        return sorted(n for n in os.listdir(self.root) if NAME.match(n))

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every registered version (of `name`, or of every name), oldest first per name."""
        found = []
        for n in [name] if name else self.names():
            aliases = self._aliases(n)
            found += [self._load(n, number, aliases) for number in self._numbers(n)]
        return found

    def set_alias(self, ref: str, alias: str) -> ModelVersion:
        """Point `alias` at the version `ref` names (taking it from any other version)."""
        check_alias(alias)
        version = self.resolve(ref)
        with self._locked(version.name):
            self._write_aliases(
                version.name, self._aliases(version.name) | {alias: version.version}
            )
        return self.resolve(version.ref)

    def delete_alias(self, ref: str, alias: str) -> ModelVersion:
        """Remove `alias`, which must point at the version `ref` names; `latest` stays."""
        check_alias(alias)
        version = self.resolve(ref)
        if alias == LATEST:
            raise ValueError(f"{LATEST!r} cannot be deleted: move it with `alias NAME@N latest`")
        with self._locked(version.name):
            table = self._aliases(version.name)
            if table.get(alias) != version.version:
                where = f"{version.name}@{table[alias]}" if alias in table else "no version"
                raise ValueError(f"alias {alias!r} is not on {version.ref} (it is on {where})")
            del table[alias]
            self._write_aliases(version.name, table)
        return self.resolve(version.ref)

    def record_deployment(self, ref: str, deployment: dict) -> ModelVersion:
        version = self.resolve(ref)
        with self._locked(version.name):
            record = self._read(version.name, version.version)
            record["deployments"] = [*record.get("deployments", []), deployment]
            self._write(version.name, version.version, record)
        return self.resolve(version.ref)

    def _home(self, name: str, number: int) -> str:
        return os.path.join(self.root, name, str(number))

    def _numbers(self, name: str) -> list[int]:
        """The complete versions of `name` (their version.json written), in order."""
        base = os.path.join(self.root, name)
        if not os.path.isdir(base):
            return []
        numbers = (int(d) for d in os.listdir(base) if d.isdigit())
        return sorted(n for n in numbers if os.path.isfile(self._version_file(name, n)))

    def _version_file(self, name: str, number: int) -> str:
        return os.path.join(self._home(name, number), VERSION_FILE)

    def _load(self, name: str, number: int, aliases: dict[str, int]) -> ModelVersion:
        record = self._read(name, number)
        return ModelVersion(
            name=name,
            version=number,
            model_dir=self._model_dir(name, number, record.get("model_dir", MODEL)),
            created=record["created"],
            aliases=sorted(a for a, n in aliases.items() if n == number),
            metrics=record.get("metrics", {}),
            labels=record.get("labels", {}),
            lineage=record.get("lineage", {}),
            deployments=record.get("deployments", []),
        )

    def _model_dir(self, name: str, number: int, stored: str) -> str:
        # Registries written before paths were relative hold an absolute path; the copy inside
        # the version's own directory is the one that moves with the registry.
        own = os.path.join(self._home(name, number), MODEL)
        if os.path.isabs(stored):
            return own if os.path.isdir(own) else stored
        return os.path.abspath(os.path.join(self._home(name, number), stored))

    def _read(self, name: str, number: int) -> dict:
        with open(self._version_file(name, number)) as f:
            return json.load(f)

    def _write(self, name: str, number: int, record: dict) -> None:
        record = {**record, "name": name, "version": number, "model_dir": MODEL}
        record.pop("aliases", None)  # aliases move between versions; aliases.json is the truth
        _write_json(self._version_file(name, number), record)

    def _aliases(self, name: str) -> dict[str, int]:
        path = os.path.join(self.root, name, "aliases.json")
        if not os.path.isfile(path):
            return {}
        with open(path) as f:
            return json.load(f)

    def _write_aliases(self, name: str, table: dict[str, int]) -> None:
        _write_json(os.path.join(self.root, name, "aliases.json"), table)

    def _new_version_dir(self, name: str) -> tuple[int, str]:
        base = os.path.join(self.root, name)
        os.makedirs(base, exist_ok=True)
        while True:  # mkdir is atomic, so two concurrent registrations get different numbers
            number = 1 + max((int(d) for d in os.listdir(base) if d.isdigit()), default=0)
            try:
                os.mkdir(self._home(name, number))
                return number, self._home(name, number)
            except FileExistsError:
                continue

    @contextlib.contextmanager
    def _locked(self, name: str):
        """This process alone changes `name`'s aliases and version records meanwhile."""
        with open(os.path.join(self.root, name, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def _write_json(path: str, data: dict) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)  # readers never see a half-written file


def check_name(name: str) -> None:
    if not NAME.match(name):
        raise ValueError(
            f"model name {name!r}: use 1-128 lowercase letters, digits, '.', '_', '-', "
            "starting with a letter or digit"
        )


def check_alias(alias: str) -> None:
    if not ALIAS.match(alias) or alias.isdigit():
        raise ValueError(
            f"alias {alias!r}: must match [a-z][a-zA-Z0-9-]*[a-z0-9] (2-128 characters)"
        )
