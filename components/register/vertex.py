"""register (vertex target): import the model directory as an UnmanagedContainerModel that runs
in liftoff's serving image, then upload it to the Vertex AI Model Registry. With a parent model
the upload becomes that model's next version, and its default unless `default_version` is
false, so retrains stack up as versions of one model and the newest serves by default.

Called inside the pipeline function; returns the uploaded `google.VertexModel` channel.
"""

from __future__ import annotations

from google_cloud_pipeline_components.types import artifact_types
from google_cloud_pipeline_components.v1.model import ModelUploadOp
from kfp import dsl

from components.register import aliases as alias_step
from components.register.labels import run_labels
from serving import contract
from trainers.common.secrets import HF_SECRET_ENV

# Vertex resolves these when the job runs: its own region (GCPC ops default to us-central1)
# and its own service account (the one the PipelineJob was submitted with).
JOB_REGION = "{{$.pipeline_google_cloud_location}}"
JOB_SERVICE_ACCOUNT = "{{$.pipeline_service_account}}"


def serving_container(*, image: str, hf_secret) -> dict:
    """The serving container of the uploaded model: the Vertex contract the image implements,
    and the name (never the value) of the secret holding a Hugging Face token."""
    return {
        **contract.container_spec(image),
        "env": [{"name": HF_SECRET_ENV, "value": hf_secret}],
    }


def register_vertex(
    *,
    model_uri,
    model_name,
    parent_model,
    version_aliases: list,
    default_version,
    labels,
    hf_secret,
    serving_image: str,
):
    serving_model = dsl.importer(
        artifact_uri=model_uri,
        artifact_class=artifact_types.UnmanagedContainerModel,
        metadata={"containerSpec": serving_container(image=serving_image, hf_secret=hf_secret)},
        reimport=True,
    ).set_display_name("serving-model")
    aliases = alias_step.version_aliases(aliases=version_aliases, make_default=default_version)
    # Set when the run starts, so a scheduled retrain's version names its own run.
    labeled = run_labels(labels=labels, run=dsl.PIPELINE_JOB_NAME_PLACEHOLDER)
    upload = {
        "display_name": model_name,
        "location": JOB_REGION,
        "unmanaged_container_model": serving_model.output,
        "version_aliases": aliases.output,
        "labels": labeled.output,
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
