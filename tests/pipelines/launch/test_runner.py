"""liftoff's Vertex runner: every JobState mapped by name, preemption, the pinned wandb interface,
and what the runner refuses before a job is created."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import typing

import pytest
from google.cloud.aiplatform_v1.types.job_state import JobState
from wandb.sdk.launch.errors import LaunchError
from wandb.sdk.launch.runner.abstract import State

from pipelines.launch import runner
from pipelines.launch.runner import STATES, agent_state, trainer_args
from tests.support.vertex_custom_jobs import Script

EXPECTED = {  # issue 14's table; PAUSED, UPDATING, PARTIALLY_SUCCEEDED and UNSPECIFIED decided here
    "JOB_STATE_UNSPECIFIED": "unknown",
    "JOB_STATE_QUEUED": "starting",
    "JOB_STATE_PENDING": "starting",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "running",
    "JOB_STATE_SUCCEEDED": "finished",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLING": "stopped",
    "JOB_STATE_CANCELLED": "stopped",
    "JOB_STATE_EXPIRED": "stopped",
}
PREEMPTED = "The replica workerpool0-0 was preempted (Spot VM reclaimed)."


def test_every_installed_job_state_is_mapped_by_name():
    names = [state.name for state in JobState]
    assert len(names) >= 12  # a guard: the enum was read
    assert sorted(STATES) == sorted(names), "a JobState the runner does not map (new aiplatform?)"
    assert {name: agent_state(name) for name in names} == EXPECTED
    assert set(STATES.values()) <= set(typing.get_args(State))  # what the agent knows


def test_failed_by_preemption_reads_preempted_and_other_failures_failed():
    assert agent_state("JOB_STATE_FAILED", error_message=PREEMPTED) == "preempted"
    exited = "The replica workerpool0-0 exited with a non-zero status of 143."
    assert agent_state("JOB_STATE_FAILED", error_message=exited) == "preempted"
    oom = "The replica workerpool0-0 exited with a non-zero status of 137 (OOM)."
    assert agent_state("JOB_STATE_FAILED", error_message=oom) == "failed"
    assert agent_state("JOB_STATE_CANCELLED", error_message=PREEMPTED) == "stopped"
    assert agent_state("JOB_STATE_NEW") == "unknown"  # holds the slot; the test above fails


def _custom_job(vertex_fake):
    """A real SDK CustomJob created on the fake (so `state` is read over REST, as live)."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    aiplatform.init(
        project="p",
        location="us-central1",
        api_endpoint=vertex_fake.url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    pool = {"machine_spec": {"machine_type": "n1-standard-8"}, "replica_count": 1}
    job = aiplatform.CustomJob(
        display_name="j",
        worker_pool_specs=[{**pool, "container_spec": {"image_uri": "i"}}],
        staging_bucket="gs://b",
    )
    job.submit()
    return job


def test_status_read_over_rest_where_wandbs_own_reads_unknown(vertex_fake):
    from wandb.sdk.launch.runner.vertex_runner import VertexSubmittedRun

    states = ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_FAILED"]
    vertex_fake.custom_jobs.scripts = [Script(states, error=PREEMPTED)]
    job = _custom_job(vertex_fake)
    ours = runner.LiftoffVertexSubmittedRun(job)
    seen = [asyncio.run(ours.get_status()).state for _ in range(4)]
    assert seen == ["starting", "running", "preempted", "preempted"]
    # wandb 0.31's runner on Python >= 3.11: str(JobState) is "5", so it reads "unknown".
    assert asyncio.run(VertexSubmittedRun(job).get_status()).state == "unknown"


def test_trainer_args_carry_the_preset_and_the_secret_never_the_key():
    secret = "projects/p/secrets/k/versions/1"
    assert trainer_args({"preset": "qwen2.5-0.5b", "optim": {"lr": 1e-4}}, wandb_secret=secret) == [
        "--preset",
        "qwen2.5-0.5b",
        "--wandb-secret",
        secret,
    ]
    assert trainer_args({}, wandb_secret=secret) == ["--wandb-secret", secret]


def test_the_wandb_the_correction_mirrors_is_the_installed_one():
    """Fails loudly when wandb changes: re-read vertex_runner.py, then update runner.py."""
    import wandb
    from wandb.sdk.launch import loader
    from wandb.sdk.launch.runner import vertex_runner
    from wandb.sdk.launch.runner.abstract import AbstractRun

    assert wandb.__version__ == runner.WANDB_VERSION
    with open(vertex_runner.__file__, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == runner.VERTEX_RUNNER_SHA256
    signature = inspect.signature
    assert list(signature(vertex_runner.VertexRunner.__init__).parameters) == [
        "self",
        "api",
        "backend_config",
        "environment",
        "registry",
    ]
    assert list(signature(vertex_runner.VertexRunner.run).parameters) == [
        "self",
        "launch_project",
        "image_uri",
    ]
    assert list(signature(loader.runner_from_config).parameters) == [
        "runner_name",
        "api",
        "runner_config",
        "environment",
        "registry",
    ]
    assert AbstractRun.__abstractmethods__ == {"get_logs", "wait", "get_status", "cancel", "id"}
    assert not runner.LiftoffVertexSubmittedRun.__abstractmethods__


def _project(resource_args: dict):
    """A launch project for a ready image, as the agent builds one from a popped run."""
    from wandb.sdk.launch._project_spec import LaunchProject
    from wandb.sdk.launch.api import LaunchApi

    return LaunchProject(
        uri=None,
        job=None,
        api=LaunchApi(),
        launch_spec={},
        target_entity="team",
        target_project="liftoff",
        name=None,
        docker_config={"docker_image": "us-docker.pkg.dev/p/liftoff/trainer:1"},
        git_info={},
        overrides={"run_config": {"preset": "debug"}},
        resource="vertex",
        resource_args={"vertex": resource_args},
        run_id="run1",
    )


def _run(resource_args: dict):
    from wandb.sdk.launch.environment.gcp_environment import GcpEnvironment
    from wandb.sdk.launch.registry.local_registry import LocalRegistry

    from pipelines.launch.vertex import gcp_environment

    project = _project(resource_args)
    ours = runner.LiftoffVertexRunner(
        project.api,
        {"SYNCHRONOUS": False},  # what the agent passes (wandb's PROJECT_SYNCHRONOUS)
        gcp_environment(GcpEnvironment(region="us-central1")),
        LocalRegistry(),
        wandb_secret="projects/p/secrets/k/versions/1",
    )
    return asyncio.run(ours.run(project, "us-docker.pkg.dev/p/liftoff/trainer:1"))


POOL = {"machine_spec": {"machine_type": "n1-standard-8"}, "container_spec": {"image_uri": "i"}}


@pytest.mark.parametrize(
    ("resource_args", "error"),
    [
        ({"spec": {"worker_pool_specs": [POOL]}, "run": {"spot": True}}, "unknown key run.spot"),
        ({"spec": {"machine_type": "x"}}, "unknown key spec.machine_type"),
        (
            {
                "spec": {"worker_pool_specs": [POOL], "staging_bucket": "gs://b"},
                "run": {"tensorboard": "${WANDB_API_KEY}"},
            },
            "would carry the W&B API key",
        ),
        ({"spec": {"worker_pool_specs": [POOL]}}, "staging bucket"),
    ],
)
def test_the_runner_refuses_before_any_job_is_created(
    wandb_backend, vertex_fake, resource_args, error
):
    with pytest.raises(LaunchError, match=error):
        _run(resource_args)
    assert vertex_fake.requests == []


def test_flex_start_reaches_the_job_and_cancel_stops_it(wandb_backend, vertex_fake, monkeypatch):
    from google.cloud.aiplatform_v1.types import Scheduling

    from pipelines.hardware import get_profile
    from pipelines.launch.queue_config import queue_config

    monkeypatch.setenv("LIFTOFF_PROJECT", "p")
    vertex_fake.custom_jobs.scripts = [Script(["JOB_STATE_QUEUED"])]
    config = queue_config(
        get_profile("h100x8").with_options(scheduling="FLEX_START"),
        service_account="t@p.iam.gserviceaccount.com",
        staging_bucket="gs://b",
        region="europe-west4",
    )
    run = _run(config)
    (body,) = vertex_fake.custom_jobs.bodies
    assert vertex_fake.requests[0].path == "/v1/projects/p/locations/europe-west4/customJobs"
    scheduling = body["jobSpec"]["scheduling"]
    assert scheduling["strategy"] == Scheduling.Strategy.FLEX_START.value
    assert scheduling["maxWaitDuration"] == "3600s" and scheduling["timeout"] == "604800s"
    # No entry point (a plain image): the flags are the container's args, its entrypoint stays.
    assert "command" not in _container(body)
    assert _container(body)["args"] == [
        "--preset",
        "debug",
        "--wandb-secret",
        "projects/p/secrets/k/versions/1",
    ]
    assert asyncio.run(run.get_status()).state == "starting"
    asyncio.run(run.cancel())  # what the agent's start timeout does to a job still QUEUED
    assert asyncio.run(run.get_status()).state == "stopped"


def _container(body: dict) -> dict:
    return body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]
