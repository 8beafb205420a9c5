"""Run a pipeline on the local target: kfp.local's subprocess runner on this machine.

    result = run_local("llm-finetune", params={"preset": "debug"}, workdir=".liftoff")
    result.status, result.exit_code, result.error, result.metrics, result.registry

Each run gets `<workdir>/runs/<run id>/`: `run.json` (its record, kept up to date as it runs:
pipelines/run_record.py), `logs/` (every step's whole output, and `run.log` with all of it:
pipelines/step_logs.py), checkpoints and W&B files. Artifacts go under
`<workdir>/pipeline-root/`, registered models under `<workdir>/registry/`. While it runs the
terminal shows a line per step and training's progress (pipelines/progress.py); with
`verbose`, kfp.local's own output as it comes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field

from pipelines.catalog import get_pipeline
from pipelines.progress import make_view
from pipelines.run_record import RunRecord
from pipelines.step_logs import FAILED, Failure, StepLogs
from pipelines.targets import LocalTarget

INTERRUPTED = 130  # what a shell reports after Ctrl-C


@dataclass(kw_only=True)
class RunResult:
    pipeline: str
    run_id: str
    status: str  # SUCCEEDED | FAILED
    error: str = ""  # "<step>: <its one-line cause>", plain text
    exit_code: int = 0  # 2: bad input (config, data, parameters); 1: a failure
    failed_step: str = ""
    metrics: dict = field(default_factory=dict)
    gate: float | None = None
    gate_metric: str = ""
    gate_threshold: float | None = None
    model_uri: str = ""
    registry: dict | None = None  # {"name", "version", "ref", "aliases"}, None when gated out
    deploy_check: dict | None = None
    wandb_dirs: list[str] = field(default_factory=list)
    wandb_runs: list[dict] = field(default_factory=list)  # [{"step", "dir"}]
    steps: list[dict] = field(default_factory=list)  # [{"name", "state", "seconds", "log"}]
    run_dir: str = ""
    logs: str = ""  # the directory of the step logs
    wall_s: float = 0.0

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def run_local(
    name: str,
    *,
    params: dict,
    workdir: str,
    nproc_per_node: int | None = None,
    verbose: bool = False,
    stream=None,
) -> RunResult:
    """`params`: the pipeline's parameters (the declared defaults fill the rest);
    `nproc_per_node`: training processes (DDP over gloo when > 1), by default the pipeline's
    declared `local_nproc_per_node`; `stream`: the terminal (stdout by default)."""
    workdir = os.path.abspath(workdir)
    run_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir = os.path.join(workdir, "runs", run_id)
    os.makedirs(run_dir, exist_ok=True)
    pipeline = get_pipeline(name)
    target = LocalTarget(
        run_dir=run_dir,
        registry_dir=os.path.join(workdir, "registry"),
        nproc_per_node=nproc_per_node or pipeline.local_nproc_per_node,
    )
    pipeline_func = pipeline.build(target)
    values = {p.name: p.default for p in pipeline.parameters()} | params
    values["model_labels"] = {**values["model_labels"], "liftoff_run": run_id}
    steps = step_names(pipeline_func.pipeline_spec)
    record = RunRecord(run_dir, pipeline=name, run_id=run_id, params=values, steps=steps)
    result = RunResult(
        pipeline=name,
        run_id=run_id,
        status="SUCCEEDED",
        gate_metric=values["gate_metric"],
        gate_threshold=values["gate_threshold"],
        run_dir=run_dir,
    )
    view = make_view(stream or sys.stdout, verbose=verbose)
    logs = _step_logs(record, view=view, stream=stream or sys.stdout, verbose=verbose)
    view.start(pipeline=name, run_id=run_id, steps=steps)
    pipeline_root = os.path.join(workdir, "pipeline-root")
    _watched(pipeline_func, values, pipeline_root=pipeline_root, result=result, logs=logs)
    if result.exit_code == INTERRUPTED:
        raise KeyboardInterrupt
    _find_registered(result, target.registry_dir)
    return result


def _step_logs(record: RunRecord, *, view, stream, verbose: bool) -> StepLogs:
    """With `verbose`, every line also goes to the terminal (in kfp.local's colours only on a
    terminal and without NO_COLOR)."""
    color = verbose and stream.isatty() and "NO_COLOR" not in os.environ
    run_dir = os.path.dirname(record.path)
    echo = stream if verbose else None
    return StepLogs(run_dir, record=record, view=view, echo=echo, color=color)


def _watched(pipeline_func, values: dict, *, pipeline_root: str, result: RunResult, logs) -> None:
    """Run the pipeline; whatever happens, end its record, its logs and its view."""
    started = time.monotonic()
    failure = Failure("", "liftoff stopped before the pipeline ran; see logs/run.log", FAILED)
    try:
        task, failure = execute(pipeline_func, values, pipeline_root=pipeline_root, logs=logs)
        if task is not None:
            _collect(result, task)
    finally:
        result.wall_s = round(time.monotonic() - started, 1)
        _finish(result, failure, record=logs.record, logs=logs)
        states = {step["name"]: step["state"] for step in logs.record.data["steps"]}
        logs.view.stop(states=states)


def execute(pipeline_func, values: dict, *, pipeline_root: str, logs: StepLogs):
    """Run the pipeline under kfp.local with `logs` as stdout and stderr: (its outputs, None),
    or (None, what failed)."""
    from kfp import local

    # kfp.local warns that the base image is not plain Python; the local target runs every
    # component in this interpreter on purpose.
    warnings.filterwarnings("ignore", "You may be attemping to run a task", RuntimeWarning)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=pipeline_root,
        raise_on_error=True,
    )
    with contextlib.redirect_stdout(logs), contextlib.redirect_stderr(logs):
        try:
            return pipeline_func(**values), None
        except (Exception, KeyboardInterrupt) as err:
            logs.note(traceback.format_exc())  # kept in run.log, never on the terminal
            return None, _failure(err, logs=logs)


def _failure(err: BaseException, *, logs: StepLogs) -> Failure:
    """The failed step's own cause; else (kfp.local or liftoff itself failed) the error's
    last line."""
    if isinstance(err, KeyboardInterrupt):
        return Failure("", "interrupted (Ctrl-C)", INTERRUPTED)
    failed = [step["name"] for step in logs.record.data["steps"] if step["state"] == "failed"]
    if failed:
        return logs.failure(failed[0])
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return Failure("", lines[-1] if lines else type(err).__name__, FAILED)


def _finish(result: RunResult, failure: Failure | None, *, record: RunRecord, logs: StepLogs):
    if failure is not None:
        result.status, result.exit_code = "FAILED", failure.exit_code
        result.failed_step = failure.step
        result.error = f"{failure.step}: {failure.cause}" if failure.step else failure.cause
    record.finish(status=result.status, error=result.error, exit_code=result.exit_code)
    logs.close()
    result.logs = logs.directory
    result.steps = [_step(step, record=record) for step in record.data["steps"]]
    result.wandb_dirs = sorted(glob.glob(os.path.join(result.run_dir, "wandb", "wandb", "*run-*")))
    result.wandb_runs = [
        {"step": logs.wandb_steps.get(path, ""), "dir": path} for path in result.wandb_dirs
    ]


def _step(step: dict, *, record: RunRecord) -> dict:
    began, ended = record.seconds.get(step["name"], (None, None))
    seconds = round(ended - began, 1) if began is not None and ended is not None else None
    log = os.path.join(os.path.dirname(record.path), step["log"])
    return {"name": step["name"], "state": step["state"], "seconds": seconds, "log": log}


def step_names(spec) -> list[str]:
    """The container tasks of a compiled pipeline in an order they can run in, each sub-DAG
    (a `dsl.If`) expanded where it stands."""
    return _ordered(spec.root.dag, spec.components)


def _ordered(dag, components) -> list[str]:
    names: list[str] = []
    pending = dict(dag.tasks)
    while pending:
        # Dependencies on tasks outside this DAG (a condition's inputs) are met already.
        ready = sorted(n for n, t in pending.items() if not set(t.dependent_tasks) & set(pending))
        assert ready, f"a cycle among {sorted(pending)}"
        for name in ready:
            component = components[pending.pop(name).component_ref.name]
            if component.WhichOneof("implementation") == "dag":
                names += _ordered(component.dag, components)
            else:
                names.append(name)
    return names


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
