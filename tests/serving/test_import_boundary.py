"""serving/ ships in the serving image alone: it never imports kfp, GCPC or aiplatform, and its
modules import each other one way (no circle held open by an import inside a function).

    .venv/bin/python -m pytest -q tests/serving/test_import_boundary.py
"""

import ast
from pathlib import Path

from tests.support.imports import modules_after, within

FORBIDDEN = ("kfp", "google_cloud_pipeline_components", "google.cloud.aiplatform")
SERVING = Path(__file__).resolve().parents[2] / "serving"
MODULES = sorted(f"serving.{p.stem}" for p in SERVING.glob("*.py") if p.stem != "__init__")


def test_serving_imports_no_pipeline_or_vertex_sdk():
    loaded = modules_after("\n".join(f"import {m}" for m in MODULES))
    assert "serving.server" in loaded and "fastapi" in loaded  # guard: the imports happened
    assert within(loaded, FORBIDDEN) == []


def _imports(module: str) -> set[str]:
    """The serving modules `module` imports anywhere in its file, functions included."""
    tree = ast.parse((SERVING / f"{module.removeprefix('serving.')}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "serving":
            found |= {f"serving.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("serving."):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("serving.")}
    return found & set(MODULES)


def test_serving_modules_import_each_other_one_way():
    graph = {m: _imports(m) for m in MODULES}
    assert "serving.text" in graph["serving.predictor"]  # guard: the graph sees imports
    done: set[str] = set()

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join([*path, module])
        if module not in done:
            for imported in graph[module]:
                visit(imported, (*path, module))
            done.add(module)

    for module in MODULES:
        visit(module, ())
    assert "serving.predictor" not in graph["serving.vision"] | graph["serving.text"]
