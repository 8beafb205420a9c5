"""Run a pipeline on the local target: kfp.local's subprocess runner on this machine.

    result = run_local("llm-finetune", params={"preset": "debug"}, workdir=".liftoff")
    result.status, result.metrics, result.registry, result.wandb_dirs

Each run gets `<workdir>/runs/<run id>/` (checkpoints, W&B files); artifacts go under
`<workdir>/pipeline-root/`; registered models under `<workdir>/registry/`.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import time
import warnings
from dataclasses import dataclass, field

from pipelines.catalog import get_pipeline
from pipelines.targets import LocalTarget


@dataclass(kw_only=True)
class RunResult:
    pipeline: str
    run_id: str
    status: str  # SUCCEEDED | FAILED
    error: str = ""
    metrics: dict = field(default_factory=dict)
    gate: float | None = None
    model_uri: str = ""
    registry: dict | None = None  # {"name", "version", "ref", "aliases"}, None when gated out
    deploy_check: dict | None = None
    wandb_dirs: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def run_local(
    name: str, *, params: dict, workdir: str, nproc_per_node: int | None = None
) -> RunResult:
    """`nproc_per_node`: training processes (DDP over gloo when > 1); by default the
    pipeline's LOCAL_NPROC_PER_NODE, else 1."""
    from kfp import local

    # kfp.local warns that the base image is not plain Python; the local target runs every
    # component in this interpreter on purpose.
    warnings.filterwarnings("ignore", "You may be attemping to run a task", RuntimeWarning)
    workdir = os.path.abspath(workdir)
    run_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir = os.path.join(workdir, "runs", run_id)
    registry_dir = os.path.join(workdir, "registry")
    os.makedirs(run_dir, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=os.path.join(workdir, "pipeline-root"),
        raise_on_error=True,
    )
    pipeline = get_pipeline(name)
    if nproc_per_node is None:
        nproc_per_node = getattr(pipeline, "LOCAL_NPROC_PER_NODE", 1)
    target = LocalTarget(run_dir=run_dir, registry_dir=registry_dir, nproc_per_node=nproc_per_node)
    pipeline_func = pipeline.build(target)
    labels = {**params.get("model_labels", {}), "liftoff_run": run_id}
    result = RunResult(pipeline=name, run_id=run_id, status="SUCCEEDED")
    started = time.monotonic()
    try:
        task = pipeline_func(**{**params, "model_labels": labels})
    except Exception as err:  # kfp.local raises RuntimeError naming the failed task
        result.status, result.error = "FAILED", str(err).strip().splitlines()[-1]
    else:
        _collect(result, task)
    result.wall_s = round(time.monotonic() - started, 1)
    result.wandb_dirs = sorted(glob.glob(os.path.join(run_dir, "wandb", "wandb", "*run-*")))
    _find_registered(result, registry_dir)
    return result


def _collect(result: RunResult, task) -> None:
    outputs = task.outputs
    result.metrics = {k: float(v) for k, v in outputs["metrics"].metadata.items()}
    result.gate = float(outputs["gate"])
    result.model_uri = outputs["model"].path


def _find_registered(result: RunResult, registry_dir: str) -> None:
    from serving.registry import LocalRegistry

    for version in LocalRegistry(registry_dir).versions():
        if version.labels.get("liftoff_run") == result.run_id:
            result.registry = {
                "name": version.name,
                "version": version.version,
                "ref": version.ref,
                "aliases": version.aliases,
                "model_dir": version.model_dir,
            }
            result.deploy_check = version.deployments[-1] if version.deployments else None
