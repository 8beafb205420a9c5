"""A compiled pipeline read the way Vertex AI runs it, for contract tests.

    job = custom_job(spec, "train")          # aiplatform_v1.CustomJob, as GCPC's launcher sends it
    job.job_spec.worker_pool_specs[0].disk_spec.boot_disk_type
    machine = container_resources(spec, "evaluate")   # PipelineContainerSpec.ResourceSpec
    value = task_value(spec, "train", "base_output_directory")

`custom_job` fills the CustomJob launcher's `--payload` template with the task's inputs (a
constant, else the pipeline parameter's default, else the component's default) as the backend
does, then takes GCPC's own steps from payload to request (system labels, empty fields removed)
and builds the request type the JobService client sends. Runtime placeholders such as
`{{$.pipeline_service_account}}` stay as they are: Vertex resolves them when the job starts.
"""

from __future__ import annotations

import json
import re

from google.cloud import aiplatform_v1
from google.protobuf import json_format
from google_cloud_pipeline_components.container.v1.custom_job import remote_runner
from google_cloud_pipeline_components.container.v1.gcp_launcher.utils import json_util
from kfp.pipeline_spec import pipeline_spec_pb2

from tests.support.compiled import tasks

# What an optional input without a default resolves to.
_EMPTY = {"STRING": "", "STRUCT": {}, "LIST": [], "BOOLEAN": False}
_INPUT = re.compile(r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}")


def find_task(spec: dict, name: str) -> tuple[dict, dict]:
    """(the DAG component holding task `name`, the task), at any level of the DAG."""
    for component, task_name, task in tasks(spec):
        if task_name == name:
            return (spec["root"] if component == "root" else spec["components"][component]), task
    raise KeyError(name)


def task_value(spec: dict, name: str, parameter: str):
    """What task `name` gets for input `parameter`, before runtime placeholders resolve."""
    _, task = find_task(spec, name)
    given = task["inputs"].get("parameters", {}).get(parameter)
    if given is None:
        component = spec["components"][task["componentRef"]["name"]]
        declared = component["inputDefinitions"]["parameters"][parameter]
        return declared.get("defaultValue", _EMPTY[declared["parameterType"]])
    if "runtimeValue" in given:
        return given["runtimeValue"]["constant"]
    pipeline_input = given["componentInputParameter"]
    return spec["root"]["inputDefinitions"]["parameters"][pipeline_input]["defaultValue"]


def custom_job(spec: dict, name: str = "train") -> aiplatform_v1.CustomJob:
    _, task = find_task(spec, name)
    component = spec["components"][task["componentRef"]["name"]]
    executor = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    args = executor["args"]
    template = args[args.index("--payload") + 1]
    payload = _INPUT.sub(lambda m: _as_text(task_value(spec, name, m.group(1))), template)
    job = json_util.recursive_remove_empty(
        json.loads(remote_runner.insert_system_labels_into_payload(payload), strict=False)
    )
    return aiplatform_v1.CustomJob(job)


def _as_text(value) -> str:
    """A value as the backend writes it into a placeholder: strings bare, the rest as JSON,
    where protobuf's numbers (all doubles) print as Go's JSON prints them: 500.0 as 500."""
    return value if isinstance(value, str) else json.dumps(_numbers(value))


def _numbers(value):
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_numbers(item) for item in value]
    return value


def executor(spec: dict, name: str) -> pipeline_spec_pb2.PipelineDeploymentConfig.ExecutorSpec:
    _, task = find_task(spec, name)
    label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
    message = pipeline_spec_pb2.PipelineDeploymentConfig.ExecutorSpec()
    return json_format.ParseDict(spec["deploymentSpec"]["executors"][label], message)


def container_resources(spec: dict, name: str):
    """The machine a (non-CustomJob) task asks Vertex AI Pipelines for."""
    return executor(spec, name).container.resources
