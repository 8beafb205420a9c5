"""register (vertex target): import the model directory as an UnmanagedContainerModel that runs
in liftoff's serving image, then upload it to the Vertex AI Model Registry. With a parent model
the upload becomes that model's next version, so retrains stack up as versions of one model.

Called inside the pipeline function; returns the uploaded `google.VertexModel` channel.
"""

from __future__ import annotations

from google_cloud_pipeline_components.types import artifact_types
from google_cloud_pipeline_components.v1.model import ModelUploadOp
from kfp import dsl

from components.images import SERVING_IMAGE

# Vertex resolves this to the pipeline job's own region; GCPC ops default to us-central1.
JOB_REGION = "{{$.pipeline_google_cloud_location}}"
SERVING_PORT = 8080
HEALTH_ROUTE = "/health"
PREDICT_ROUTE = "/predict"


def container_spec() -> dict:
    """The Vertex custom-container contract the serving image implements."""
    return {
        "imageUri": SERVING_IMAGE,
        "healthRoute": HEALTH_ROUTE,
        "predictRoute": PREDICT_ROUTE,
        "ports": [{"containerPort": SERVING_PORT}],
    }


def register_vertex(*, model_uri, model_name, parent_model, version_aliases, labels):
    serving_model = dsl.importer(
        artifact_uri=model_uri,
        artifact_class=artifact_types.UnmanagedContainerModel,
        metadata={"containerSpec": container_spec()},
        reimport=True,
    ).set_display_name("serving-model")
    upload = {
        "display_name": model_name,
        "location": JOB_REGION,
        "unmanaged_container_model": serving_model.output,
        "version_aliases": version_aliases,
        "labels": labels,
    }
    with dsl.If(parent_model != "", name="new-version"):
        parent = dsl.importer(
            artifact_uri=parent_model,
            artifact_class=artifact_types.VertexModel,
            metadata={"resourceName": parent_model},
            reimport=True,
        ).set_display_name("parent-model")
        as_version = ModelUploadOp(parent_model=parent.output, **upload)
    with dsl.Else(name="first-version"):
        first = ModelUploadOp(**upload)
    return dsl.OneOf(as_version.outputs["model"], first.outputs["model"])
