"""deploy (vertex target): a new Vertex AI Endpoint, or an existing one by resource name, then
the uploaded model deployed to it on the serving hardware profile with a traffic split. The
server runs as the pipeline job's service account, which reads the model's secrets (a Hugging
Face token) and `gs://` images.

Called inside the pipeline function, after register_vertex.
"""

from __future__ import annotations

from google_cloud_pipeline_components.types import artifact_types
from google_cloud_pipeline_components.v1.endpoint import EndpointCreateOp, ModelDeployOp
from kfp import dsl

from components.register.vertex import JOB_REGION, JOB_SERVICE_ACCOUNT


def deploy_vertex(*, model, model_name, endpoint, traffic_split, serving):
    """`serving`: a hardware profile (machine type, accelerators, replicas)."""
    with dsl.If(endpoint == "", name="new-endpoint"):
        created = EndpointCreateOp(display_name=model_name, location=JOB_REGION)
    with dsl.Else(name="existing-endpoint"):
        existing = dsl.importer(
            artifact_uri=endpoint,
            artifact_class=artifact_types.VertexEndpoint,
            metadata={"resourceName": endpoint},
            reimport=True,
        ).set_display_name("existing-endpoint")
    return ModelDeployOp(
        model=model,
        endpoint=dsl.OneOf(created.outputs["endpoint"], existing.output),
        deployed_model_display_name=model_name,
        traffic_split=traffic_split,
        dedicated_resources_machine_type=serving.machine_type,
        dedicated_resources_accelerator_type=serving.accelerator_type,
        dedicated_resources_accelerator_count=serving.accelerator_count,
        dedicated_resources_min_replica_count=serving.nodes,
        dedicated_resources_max_replica_count=serving.nodes,
        service_account=JOB_SERVICE_ACCOUNT,
    )
