"""serving/ ships in the serving image alone: it never imports kfp, GCPC or aiplatform."""

import json
import subprocess
import sys

from tests.support.trainer_runs import REPO

FORBIDDEN = ("kfp", "google_cloud_pipeline_components", "google.cloud.aiplatform")
MODULES = ["serving.server", "serving.predictor", "serving.local", "serving.__main__"]


def test_serving_imports_no_pipeline_or_vertex_sdk():
    code = (
        f"import importlib, json, sys\nfor m in {MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = json.loads(done.stdout)
    assert "serving.server" in loaded and "fastapi" in loaded  # guard: the imports happened
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []
