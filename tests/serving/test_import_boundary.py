"""serving/ ships in the serving image alone: it never imports kfp, GCPC or aiplatform."""

from tests.support.imports import modules_after, within

FORBIDDEN = ("kfp", "google_cloud_pipeline_components", "google.cloud.aiplatform")
MODULES = ["serving.server", "serving.predictor", "serving.local", "serving.__main__"]


def test_serving_imports_no_pipeline_or_vertex_sdk():
    loaded = modules_after("\n".join(f"import {m}" for m in MODULES))
    assert "serving.server" in loaded and "fastapi" in loaded  # guard: the imports happened
    assert within(loaded, FORBIDDEN) == []
