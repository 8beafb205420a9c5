"""Submit a compiled pipeline (KFP IR YAML) to Vertex AI Pipelines.

    settings = resolve_settings({"project": "my-project", "region": "us-central1",
                                 "pipeline_root": "gs://my-bucket/root"})
    result = submit("llm-finetune.yaml", settings=settings, display_name="sft-nightly",
                    parameter_values={"learning_rate": 2e-5}, labels={"team": "ml"})
    print(result.console_url)

`dry_run_request(...)` builds the same job and returns the whole create request as REST JSON
(parent, pipelineJobId, the PipelineJob body, and the experiment the run would join) without
touching the network (no credentials lookup, no bucket check, no API call).

google.cloud.aiplatform is imported inside the functions: it costs ~1.8 s, and the CLI must
stay instant for everything that does not talk to Vertex.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.preflight import check_labels
from pipelines.settings import SubmitSettings

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.cloud.aiplatform import PipelineJob

CONSOLE_URL = (
    "https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{job_id}"
    "?project={project}"
)
_FAILED_STATES = ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")
# Where `submit(experiment=...)` records the run: the experiment is a metadata context of the
# project's default store, and the run's own context becomes its child.
METADATA_CONTEXTS = "projects/{project}/locations/{region}/metadataStores/default/contexts"


@dataclass(frozen=True, kw_only=True)
class SubmitResult:
    resource_name: str  # projects/P/locations/R/pipelineJobs/ID
    console_url: str
    state: str | None  # e.g. "PIPELINE_STATE_SUCCEEDED" after wait=True, else None


def init_vertex(settings: SubmitSettings) -> None:
    """Point the aiplatform SDK at the settings' project, region and endpoint.

    A loopback http:// endpoint (an emulator) gets the REST transport, which is the only one
    that speaks plain HTTP, and anonymous credentials, so no ADC lookup can reach Google.
    """
    from google.cloud import aiplatform

    if settings.is_loopback:
        from google.auth.credentials import AnonymousCredentials

        aiplatform.init(
            project=settings.project,
            location=settings.region,
            api_endpoint=settings.api_endpoint,
            api_transport="rest",
            credentials=AnonymousCredentials(),
        )
    else:
        aiplatform.init(
            project=settings.project,
            location=settings.region,
            api_endpoint=settings.api_endpoint or None,
        )


def build_job(
    template_path: str,
    *,
    settings: SubmitSettings,
    display_name: str,
    parameter_values: Mapping[str, Any],
    labels: Mapping[str, str],
    enable_caching: bool | None = None,
    job_id: str | None = None,
    credentials: Credentials | None = None,
    template_uri: str = "",
) -> PipelineJob:
    """A PipelineJob for the compiled template, not yet submitted.

    `job_id` defaults to the SDK's `<pipeline-name>-<YYYYmmddHHMMSS>`; pass one when the
    parameters must name the run's own directories. `template_uri`: the Artifact Registry
    version the template came from, recorded in the run. `credentials` default to those of
    `aiplatform.init` (ADC unless `init_vertex` chose anonymous ones); constructing the job
    makes no API call, but resolving ADC may.
    """
    from google.cloud import aiplatform

    check_labels(labels)
    job = aiplatform.PipelineJob(
        display_name=display_name,
        template_path=template_path,
        pipeline_root=settings.pipeline_root,
        parameter_values=dict(parameter_values),
        labels=dict(labels),
        enable_caching=enable_caching,
        job_id=job_id,
        project=settings.project,
        location=settings.region,
        credentials=credentials,
    )
    if template_uri:
        # The pushed template `template_path` was downloaded from (pipelines/templates.py);
        # the SDK names only https://...-kfp.pkg.dev paths it downloaded itself.
        job._gca_resource.template_uri = template_uri
    return job


def request_body(job: PipelineJob, *, service_account: str = "") -> dict:
    """The body of the create request for `job`, as the REST API's camelCase JSON."""
    from google.protobuf import json_format

    # `gca_resource` refuses a job not yet created, hence the private attribute; a copy keeps
    # `job` as it was built.
    message = copy.deepcopy(job._gca_resource._pb)
    if service_account:
        message.service_account = service_account
    return json_format.MessageToDict(message)


def dry_run_body(template_path: str, *, settings: SubmitSettings, **job_args: Any) -> dict:
    """The PipelineJob `submit` would send, computed offline: anonymous credentials, no API
    call. `job_args`: the other keyword arguments of `build_job`."""
    from google.auth.credentials import AnonymousCredentials

    # Anonymous credentials skip the ADC lookup, which may probe the network.
    credentials = AnonymousCredentials()
    job = build_job(template_path, settings=settings, credentials=credentials, **job_args)
    return request_body(job, service_account=settings.service_account)


def dry_run_request(
    template_path: str,
    *,
    settings: SubmitSettings,
    job_id: str,
    experiment: str | None = None,
    **job_args: Any,
) -> dict:
    """Everything `submit` would send, offline: the create request (parent, pipelineJobId and
    the PipelineJob) and, with `experiment`, the association it makes once the job exists (the
    experiment's context, created if missing, gets the run's context as a child)."""
    body = dry_run_body(template_path, settings=settings, job_id=job_id, **job_args)
    contexts = METADATA_CONTEXTS.format(project=settings.project, region=settings.region)
    association = None
    if experiment:
        association = {
            "context": f"{contexts}/{experiment}",
            "addContextChildren": {"childContexts": [f"{contexts}/{job_id}"]},
        }
    return {
        "parent": f"projects/{settings.project}/locations/{settings.region}",
        "pipelineJobId": job_id,
        "pipelineJob": body,
        "experiment": association,
    }


def submit(
    template_path: str,
    *,
    settings: SubmitSettings,
    experiment: str | None = None,
    wait: bool = False,
    **job_args: Any,
) -> SubmitResult:
    """Create the pipeline run on Vertex; with `wait`, block until it ends. `job_args`: the other
    keyword arguments of `build_job` (display_name, parameter_values, labels, ...).

    Raises RuntimeError (one line) when a waited-for run ends FAILED or CANCELLED.
    """
    init_vertex(settings)
    job = build_job(template_path, settings=settings, **job_args)
    # Also checks the pipeline-root bucket and creates it if missing (the SDK's doing).
    with _bucket_check(settings):
        job.submit(service_account=settings.service_account or None, experiment=experiment)
    console_url = CONSOLE_URL.format(
        region=settings.region, job_id=job.job_id, project=settings.project
    )
    state = _wait(job, console_url) if wait else None
    return SubmitResult(resource_name=job.resource_name, console_url=console_url, state=state)


@contextlib.contextmanager
def _bucket_check(settings: SubmitSettings):
    """The SDK's pipeline-root bucket check, except on a loopback endpoint (an emulator) with
    no storage emulator (STORAGE_EMULATOR_HOST): there it would ask the real Cloud Storage."""
    if not settings.is_loopback or os.environ.get("STORAGE_EMULATOR_HOST"):
        yield
        return
    from google.cloud.aiplatform.utils import gcs_utils

    name = "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist"
    check = getattr(gcs_utils, name)
    setattr(gcs_utils, name, lambda **_: None)
    try:
        yield
    finally:
        setattr(gcs_utils, name, check)


def _wait(job: PipelineJob, console_url: str) -> str:
    """Block until `job` ends; return its final state name or raise a one-line RuntimeError."""
    try:
        job.wait()
    except RuntimeError:
        # The SDK's own "Job failed with:\n<error>" spans lines; the state check below won't.
        if job.gca_resource.state.name not in _FAILED_STATES:
            raise
    state = job.gca_resource.state.name
    if state in _FAILED_STATES:
        error = " ".join(job.gca_resource.error.message.split()) or "no error message"
        raise RuntimeError(f"{job.resource_name} ended {state}: {error} ({console_url})")
    return state
