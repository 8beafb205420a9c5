"""trainers/ ships in the trainer image alone, and its packages depend one way: it never imports
kfp, GCPC or aiplatform; `{llm, vlm, arr_coc} -> lm -> common`, sibling trainers never import
each other, and no module imports itself round a circle, not even from inside a function."""

from __future__ import annotations

import ast
import pathlib

import pytest

from tests.support.imports import modules_after, within
from tests.support.trainer_runs import REPO

FORBIDDEN = ("kfp", "google_cloud_pipeline_components", "google.cloud.aiplatform")
MODULES = [
    "trainers.llm.__main__",
    "trainers.llm.train",
    "trainers.llm.evaluate",
    "trainers.common.tracking",
    "trainers.common.secrets",
    "trainers.common.storage",
    "trainers.vlm.__main__",
    "trainers.vlm.train",
    "trainers.vlm.evaluate",
    "trainers.vlm.prepared",
]
TRAINERS = ("llm", "vlm", "arr_coc")
# What each package of trainers/ may import from the others.
ALLOWED = {"common": {"common"}, "lm": {"lm", "common"}} | {
    name: {name, "lm", "common"} for name in TRAINERS
}


def test_trainers_import_no_pipeline_or_vertex_sdk():
    loaded = modules_after("\n".join(f"import {m}" for m in MODULES))
    # guard: the imports really happened
    assert {"trainers.llm.train", "trainers.vlm.train"} <= set(loaded)
    assert within(loaded, FORBIDDEN) == []


def _modules() -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted((REPO / "trainers").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: pathlib.Path, modules: dict) -> set[str]:
    """The trainers modules `path` imports anywhere in it (functions included)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            ]
    found = set()
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        found.add(name)
    return found - {"", "trainers"}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    assert sum(map(len, graph.values())) > 50  # guard: the imports were found
    return graph


def test_packages_import_only_downwards_and_never_a_sibling(graph):
    wrong = [
        f"{name} imports {target}"
        for name, targets in graph.items()
        for target in targets
        if name.count(".") and target.split(".")[1] not in ALLOWED[name.split(".")[1]]
    ]
    assert wrong == []


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    done: set[str] = set()

    def circle_from(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return path[path.index(name) :] + [name]
        for target in sorted(graph[name]):
            if target not in done:
                found = circle_from(target, [*path, name])
                if found:
                    return found
        done.add(name)
        return None

    return [c for name in sorted(graph) if (c := circle_from(name, []))]


def test_no_import_circles(graph):
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}})[0] == ["a", "b", "c", "a"]  # guard
    assert _circles(graph) == []
