"""liftoff's Vertex runner for W&B's launch agent: wandb 0.31's `VertexRunner`, corrected.

    runner = LiftoffVertexRunner(api, backend_config, environment, registry, wandb_secret=S)
    run = await runner.run(launch_project, image_uri)     # creates the CustomJob
    (await run.get_status()).state                       # "starting" ... "finished"

pipelines.launch.agent registers it for the `vertex` and `gcp-vertex` resources. It is wandb's
`run()` and `launch_vertex_job()` (wandb/sdk/launch/runner/vertex_runner.py, whose version and
checksum are pinned below) with these corrections, each marked `# liftoff:` in the code:

- every `JobState` is mapped by name (wandb compares `str(state)`, which is `'4'` on Python
  >= 3.11, so every job read "unknown" and no slot was ever freed); a job that failed by
  preemption reads "preempted", which makes the agent requeue it (the trainer resumes);
- `run.scheduling_strategy` (SPOT, FLEX_START) and `run.max_wait_duration` reach
  `CustomJob.submit`, and a queue key nothing reads is an error instead of being dropped;
- the W&B API key never enters the job: the trainer gets `--wandb-secret` (Secret Manager),
  and a job whose spec would carry the key anyway is refused;
- arguments without an entry point go to the container's `args`, not over its `command`;
- the queue config's `spec.region` picks the Vertex region.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from wandb.sdk.launch._project_spec import LaunchProject
from wandb.sdk.launch.errors import LaunchError
from wandb.sdk.launch.runner.abstract import Status
from wandb.sdk.launch.runner.vertex_runner import (
    WANDB_RUN_ID_KEY,
    VertexRunner,
    VertexSubmittedRun,
)
from wandb.sdk.launch.utils import MAX_ENV_LENGTHS, PROJECT_SYNCHRONOUS, event_loop_thread_exec

from pipelines.launch.queue_config import check_keys

# The wandb release this correction is written against, and its vertex_runner.py.
WANDB_VERSION = "0.31.0"
VERTEX_RUNNER_SHA256 = "bccb221f935b76c9f8e058bdd07f75890ea5ffe39b7d6df686d23610717908d5"
RESOURCES = ("vertex", "gcp-vertex")

# Vertex AI JobState name -> the agent's state. "starting" is what the agent's start timeout
# (WANDB_LAUNCH_START_TIMEOUT) watches; "stopped", "failed", "finished" and "preempted" free
# the agent's slot, and "preempted" also requeues the run.
STATES = {
    "JOB_STATE_UNSPECIFIED": "unknown",
    "JOB_STATE_QUEUED": "starting",
    "JOB_STATE_PENDING": "starting",
    "JOB_STATE_RUNNING": "running",
    "JOB_STATE_UPDATING": "running",
    "JOB_STATE_PAUSED": "running",  # holds its slot: a paused job can be resumed
    "JOB_STATE_SUCCEEDED": "finished",
    "JOB_STATE_PARTIALLY_SUCCEEDED": "failed",  # batch jobs only; a trainer is all or nothing
    "JOB_STATE_FAILED": "failed",
    "JOB_STATE_CANCELLING": "stopped",
    "JOB_STATE_CANCELLED": "stopped",
    "JOB_STATE_EXPIRED": "stopped",
}
# A job whose Spot VM was reclaimed fails with an error that says so; the trainer itself exits
# 143 after saving a checkpoint on SIGTERM, which Vertex reports as the replica's status.
PREEMPTED = re.compile(r"preempt|non-zero status of 143\b", re.IGNORECASE)

_logger = logging.getLogger(__name__)


def agent_state(job_state: str, *, error_message: str = "") -> str:
    """The launch agent's state for a Vertex job in `job_state` (a JobState name)."""
    if job_state not in STATES:
        # A state newer than this table (the tests fail on one): keep the slot, say so.
        _logger.warning("Vertex job state %s is not known to liftoff's runner", job_state)
        return "unknown"
    if job_state == "JOB_STATE_FAILED" and PREEMPTED.search(error_message):
        return "preempted"
    return STATES[job_state]


def trainer_args(run_config: dict, *, wandb_secret: str) -> list[str]:
    """The trainer flags a launched run adds: its preset (which chooses the whole config, so it
    is a flag as well as a config value) and where the trainer reads the W&B key."""
    args = ["--preset", str(run_config["preset"])] if run_config.get("preset") else []
    return [*args, "--wandb-secret", wandb_secret]


class LiftoffVertexSubmittedRun(VertexSubmittedRun):
    async def get_status(self) -> Status:
        # liftoff: by name, every state; `job.state` re-reads the job, off the event loop.
        state = await event_loop_thread_exec(lambda: self._job.state)()
        error = self._job._gca_resource.error.message if state.name == "JOB_STATE_FAILED" else ""
        return Status(agent_state(state.name, error_message=error))


class LiftoffVertexRunner(VertexRunner):
    def __init__(self, api, backend_config, environment, registry, *, wandb_secret: str) -> None:
        super().__init__(api, backend_config, environment, registry)
        self.wandb_secret = wandb_secret  # the agent's own; a queue's run.wandb_secret wins

    async def run(self, launch_project: LaunchProject, image_uri: str) -> LiftoffVertexSubmittedRun:
        full_resource_args = launch_project.fill_macros(image_uri)
        resource_args = full_resource_args.get("vertex") or full_resource_args.get("gcp-vertex")
        if not resource_args:
            raise LaunchError(
                "No Vertex resource args specified. Create the queue's config with "
                "`liftoff launch queue-config`."
            )
        spec_args = dict(resource_args.get("spec", {}))
        run_args = dict(resource_args.get("run", {}))
        try:  # liftoff: a key nothing reads is an error, not silently dropped
            check_keys(spec_args, run_args)
        except ValueError as err:
            raise LaunchError(str(err)) from None
        region = spec_args.pop("region", "") or self.environment.region
        if not region:
            raise LaunchError("no Vertex region: set spec.region in the queue config")
        secret = run_args.pop("wandb_secret", "") or self.wandb_secret
        self._fill_containers(launch_project, spec_args, wandb_secret=secret)
        if not spec_args.get("staging_bucket"):
            raise LaunchError(
                "Vertex requires a staging bucket. Please specify a staging bucket "
                "in resource arguments under the key `vertex.spec.staging_bucket`."
            )
        _refuse_key(self._api.api_key, spec_args, run_args)
        _logger.info("Launching Vertex job...")
        return await launch_vertex_job(
            launch_project,
            spec_args,
            run_args,
            self.environment,
            region=region,
            synchronous=self.backend_config[PROJECT_SYNCHRONOUS],
        )

    def _fill_containers(self, launch_project: LaunchProject, spec_args: dict, *, wandb_secret):
        entry_point = launch_project.override_entrypoint or launch_project.get_job_entry_point()
        args = [
            *launch_project.override_args,
            *trainer_args(launch_project.override_config or {}, wandb_secret=wandb_secret),
        ]
        env_vars = launch_project.get_env_vars_dict(
            api=self._api, max_env_length=MAX_ENV_LENGTHS["VertexRunner"]
        )
        env_vars.pop("WANDB_API_KEY", None)  # liftoff: the trainer reads it from Secret Manager
        worker_specs = spec_args.get("worker_pool_specs", [])
        if not worker_specs:
            raise LaunchError(
                "Vertex requires at least one worker pool spec. Please specify "
                "a worker pool spec in resource arguments under the key "
                "`vertex.spec.worker_pool_specs`."
            )
        for spec in worker_specs:
            if not spec.get("container_spec"):
                raise LaunchError(
                    "Vertex requires a container spec for each worker pool spec. "
                    "Please specify a container spec in resource arguments under "
                    "the key `vertex.spec.worker_pool_specs[].container_spec`."
                )
            container = spec["container_spec"]
            if entry_point is not None:
                container["command"] = [*entry_point.command, *args]
            else:  # liftoff: keep the image's entrypoint; wandb put the args in its place
                container["args"] = args
            env = container.get("env", [])
            env.extend({"name": key, "value": value} for key, value in env_vars.items())
            container["env"] = env


def _refuse_key(api_key: str | None, *parts: dict) -> None:
    """A macro (`${WANDB_API_KEY}` fills from the agent's environment) must not smuggle it in."""
    text = json.dumps(parts, default=str)
    if "WANDB_API_KEY" in text or (api_key and api_key in text):
        raise LaunchError("the Vertex job would carry the W&B API key; remove it from the queue")


def _job_name(launch_project: LaunchProject) -> str:
    """`liftoff-llm` for the job `entity/project/liftoff-llm:latest`."""
    return (launch_project.job or "wandb").rsplit("/", 1)[-1].split(":")[0]


def _strategy(name: str | None):
    if not name:
        return None
    from google.cloud.aiplatform.compat.types import custom_job

    try:
        return custom_job.Scheduling.Strategy[name]
    except KeyError:
        raise LaunchError(f"run.scheduling_strategy: unknown strategy {name!r}") from None


async def launch_vertex_job(
    launch_project: LaunchProject,
    spec_args: dict[str, Any],
    run_args: dict[str, Any],
    environment,
    *,
    region: str,
    synchronous: bool = False,
) -> LiftoffVertexSubmittedRun:
    from pipelines.launch.vertex import init_kwargs

    try:
        await environment.verify()
        from google.cloud import aiplatform

        init = event_loop_thread_exec(aiplatform.init)
        await init(
            project=environment.project,
            location=region,
            staging_bucket=spec_args.get("staging_bucket"),
            credentials=await environment.get_credentials(),
            **init_kwargs(),
        )
        labels = spec_args.get("labels", {})
        labels[WANDB_RUN_ID_KEY] = launch_project.run_id
        job = aiplatform.CustomJob(
            # liftoff: wandb leaves it None for jobs, and the SDK names it "CustomJob <time>".
            display_name=launch_project.name
            or f"{_job_name(launch_project)}-{launch_project.run_id}",
            worker_pool_specs=spec_args.get("worker_pool_specs"),
            base_output_dir=spec_args.get("base_output_dir"),
            encryption_spec_key_name=spec_args.get("encryption_spec_key_name"),
            labels=labels,
        )
        execution_kwargs = dict(
            timeout=run_args.get("timeout"),
            service_account=run_args.get("service_account"),
            network=run_args.get("network"),
            enable_web_access=run_args.get("enable_web_access", False),
            experiment=run_args.get("experiment"),
            experiment_run=run_args.get("experiment_run"),
            tensorboard=run_args.get("tensorboard"),
            restart_job_on_worker_restart=run_args.get("restart_job_on_worker_restart", False),
            # liftoff: wandb drops these two; a Spot or DWS queue ran standard VMs.
            scheduling_strategy=_strategy(run_args.get("scheduling_strategy")),
            max_wait_duration=run_args.get("max_wait_duration"),
        )
    except LaunchError:
        raise
    except Exception as e:
        raise LaunchError(f"Failed to create Vertex job: {e}") from e

    if synchronous:
        await event_loop_thread_exec(job.run)(**execution_kwargs, sync=True)
    else:
        await event_loop_thread_exec(job.submit)(**execution_kwargs)
    interval = 1
    while not getattr(job._gca_resource, "name", None):
        await asyncio.sleep(interval)
        interval = min(30, interval * 2)
    return LiftoffVertexSubmittedRun(job)
