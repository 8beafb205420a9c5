"""trainers/ ships in the trainer image alone: it never imports kfp, GCPC or aiplatform."""

from tests.support.imports import modules_after, within

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


def test_trainers_import_no_pipeline_or_vertex_sdk():
    loaded = modules_after("\n".join(f"import {m}" for m in MODULES))
    # guard: the imports really happened
    assert {"trainers.llm.train", "trainers.vlm.train"} <= set(loaded)
    assert within(loaded, FORBIDDEN) == []
