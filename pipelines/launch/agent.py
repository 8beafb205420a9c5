"""Run W&B's own launch agent with liftoff's Vertex runner, its W&B key from Secret Manager.

    liftoff launch agent --queue vertex-a100 --entity my-team \\
        --wandb-secret projects/P/secrets/wandb-agent-key/versions/latest

or `run_agent(queues=["vertex-a100"], entity="my-team", wandb_secret=...)`. The agent polls its
queues until it is stopped (Ctrl-C, SIGTERM, or "stop agent" in the W&B UI), turning each run
into a Vertex CustomJob through pipelines.launch.runner. The key is read once at start with the
agent's own credentials; it is never a flag, never in the image and never in a job: jobs get
`--wandb-secret` (the queue's `run.wandb_secret`, else this same secret version).
"""

from __future__ import annotations

import os

from pipelines.launch.runner import RESOURCES, VERTEX_RUNNER_SHA256, WANDB_VERSION

SECRET_ENV = "LIFTOFF_WANDB_SECRET"  # the agent image's setting: a secret version, not a key


def check_wandb() -> None:
    """Refuse a wandb other than the one the corrected runner mirrors."""
    import hashlib

    import wandb
    from wandb.sdk.launch.runner import vertex_runner

    with open(vertex_runner.__file__, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if wandb.__version__ != WANDB_VERSION or digest != VERTEX_RUNNER_SHA256:
        raise RuntimeError(
            f"wandb {wandb.__version__} is installed; liftoff's Vertex runner is written against "
            f"wandb {WANDB_VERSION} (install from requirements.lock)"
        )


def register_runner(*, wandb_secret: str) -> None:
    """Make W&B's loader build liftoff's runner for the Vertex resources (once per process)."""
    from wandb.sdk.launch import loader

    wandbs_own = getattr(loader.runner_from_config, "wandbs_own", loader.runner_from_config)

    def runner_from_config(runner_name, api, runner_config, environment, registry):
        if runner_name not in RESOURCES:
            return wandbs_own(runner_name, api, runner_config, environment, registry)
        from pipelines.launch.runner import LiftoffVertexRunner
        from pipelines.launch.vertex import gcp_environment

        return LiftoffVertexRunner(
            api, runner_config, gcp_environment(environment), registry, wandb_secret=wandb_secret
        )

    runner_from_config.wandbs_own = wandbs_own
    loader.runner_from_config = runner_from_config


def agent_config(*, queues: list[str], entity: str, max_jobs: int) -> dict:
    if not queues:
        raise ValueError("--queue: name at least one queue")
    if max_jobs < 1 and max_jobs != -1:
        raise ValueError(f"--max-jobs: {max_jobs} must be >= 1 (or -1: no limit)")
    # No builder: launch jobs are images already built and pushed by Cloud Build.
    return {"entity": entity, "queues": queues, "max_jobs": max_jobs, "builder": {"type": "noop"}}


def run_agent(*, queues: list[str], entity: str, wandb_secret: str, max_jobs: int = 1) -> None:
    """Poll `queues` of `entity` until stopped; see the module docstring."""
    from trainers.common.secrets import check_secret_name, read_secret

    config = agent_config(queues=queues, entity=entity, max_jobs=max_jobs)
    check_secret_name(wandb_secret, what="--wandb-secret")
    check_wandb()
    # Secrets are often stored with a trailing newline, which W&B would reject.
    os.environ["WANDB_API_KEY"] = read_secret(wandb_secret).strip()
    register_runner(wandb_secret=wandb_secret)
    import wandb
    from wandb.sdk.launch._launch import create_and_run_agent
    from wandb.sdk.launch.api import LaunchApi

    try:
        create_and_run_agent(LaunchApi(), config)
    finally:
        wandb.finish()  # the agent's own hidden run
