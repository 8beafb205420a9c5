"""The W&B Launch queue configuration for Vertex AI, from the pipelines' hardware profiles.

    config = queue_config(get_profile("a100x8").with_options(nodes=2, scheduling="SPOT"),
                          service_account="trainer@p.iam.gserviceaccount.com",
                          staging_bucket="gs://p-liftoff/launch", region="us-central1")
    print(render(config))        # YAML for the queue's config box in the W&B UI

W&B Launch hands `spec` to the `CustomJob` constructor and `run` to `CustomJob.submit`, after
filling its macros (`${image_uri}`: the job's image; `${run_id}`: the W&B run). liftoff's runner
(pipelines.launch.runner) reads the same keys plus the ones W&B's own runner drops or lacks:
`spec.region`, `run.scheduling_strategy`, `run.max_wait_duration` and `run.wandb_secret`.
"""

from __future__ import annotations

import copy

from pipelines.hardware import Profile
from pipelines.settings import check_region
from trainers.common.distributed import GPUS_ENV
from trainers.common.secrets import check_secret_name

RESOURCE = "gcp-vertex"  # the queue's resource type (the runner also answers to "vertex")
# A requeued (preempted) run keeps its run id, so it finds its checkpoints here and resumes.
OUTPUT_DIR = "{bucket}/${{project_name}}/${{run_id}}"
# DWS waits this long for capacity by default; the agent's start timeout must be longer.
FLEX_START_WAIT_S = 3600
SPEC_KEYS = frozenset(
    {
        "worker_pool_specs",
        "staging_bucket",
        "base_output_dir",
        "encryption_spec_key_name",
        "labels",
        "region",
    }
)
RUN_KEYS = frozenset(
    {
        "timeout",
        "service_account",
        "network",
        "enable_web_access",
        "experiment",
        "experiment_run",
        "tensorboard",
        "restart_job_on_worker_restart",
        "scheduling_strategy",
        "max_wait_duration",
        "wandb_secret",
    }
)


def queue_config(
    profile: Profile,
    *,
    service_account: str,
    staging_bucket: str,
    region: str = "us-central1",
    wandb_secret: str = "",
    max_wait_s: int = FLEX_START_WAIT_S,
) -> dict:
    """The `{"spec": ..., "run": ...}` of a Vertex queue that runs jobs on `profile`."""
    _check(service_account=service_account, staging_bucket=staging_bucket, region=region)
    if wandb_secret:
        check_secret_name(wandb_secret, what="--wandb-secret")
    bucket = staging_bucket.rstrip("/")
    spec = {
        "worker_pool_specs": worker_pool_specs(profile),
        "staging_bucket": bucket,
        "base_output_dir": OUTPUT_DIR.format(bucket=bucket),
        "labels": {"liftoff-hardware": profile.name},
        "region": region,
    }
    run = {
        "service_account": service_account,
        "timeout": profile.timeout_s,
        # A multi-node job restarts whole: its workers cannot rejoin a running DDP group.
        "restart_job_on_worker_restart": profile.nodes > 1,
        "scheduling_strategy": profile.scheduling,
    }
    if profile.scheduling == "FLEX_START":
        run["max_wait_duration"] = max_wait_s
    if wandb_secret:
        run["wandb_secret"] = wandb_secret
    return {"spec": spec, "run": run}


def worker_pool_specs(profile: Profile) -> list[dict]:
    """One primary replica, then N-1 workers: the shape the pipelines' CustomJobs have."""
    machine = {"machine_type": profile.machine_type}
    if profile.accelerator_type:
        machine |= {
            "accelerator_type": profile.accelerator_type,
            "accelerator_count": profile.accelerator_count,
        }
    pool = {
        "machine_spec": machine,
        "disk_spec": {
            "boot_disk_type": profile.boot_disk_type,
            "boot_disk_size_gb": profile.boot_disk_gb,
        },
        "container_spec": {
            "image_uri": "${image_uri}",
            # The trainer stops at once when CUDA sees fewer GPUs than the node should have.
            "env": [{"name": GPUS_ENV, "value": str(profile.accelerator_count)}],
        },
    }
    # Copies: the runner fills each pool's container in place, and YAML would alias shared ones.
    pools = [{**copy.deepcopy(pool), "replica_count": 1}]
    if profile.nodes > 1:
        pools.append({**copy.deepcopy(pool), "replica_count": profile.nodes - 1})
    return pools


def check_keys(spec: dict, run: dict) -> None:
    """Raise a one-line ValueError naming a key that no runner would read (W&B's drops them)."""
    for where, given, known in (("spec", spec, SPEC_KEYS), ("run", run, RUN_KEYS)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(
                f"queue config: unknown key {where}.{unknown[0]}; known: {', '.join(sorted(known))}"
            )


def render(config: dict) -> str:
    """YAML, as the W&B UI's queue config box takes it (key order kept)."""
    import yaml

    return yaml.safe_dump(config, sort_keys=False)


def _check(*, service_account: str, staging_bucket: str, region: str) -> None:
    if "@" not in service_account or not service_account.endswith(".gserviceaccount.com"):
        raise ValueError(
            f"--service-account: {service_account!r} is not valid: expected "
            "NAME@PROJECT.iam.gserviceaccount.com"
        )
    if not staging_bucket.startswith("gs://") or len(staging_bucket.rstrip("/")) <= len("gs://"):
        raise ValueError(f"--staging-bucket: {staging_bucket!r} is not valid: expected gs://BUCKET")
    check_region(region, source="--region")
