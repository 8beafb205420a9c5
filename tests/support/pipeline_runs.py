"""Runs as the watch commands find them, for tests: a Vertex PipelineJob with its task details
(seeded into tests.support.vertex_fake), and a local run record as `liftoff run` writes it.

    name = vertex_run(vertex_fake, states=["PIPELINE_STATE_RUNNING", "PIPELINE_STATE_SUCCEEDED"])
    run_dir = local_run(tmp_path / ".liftoff", "llm-finetune-20260105-030000-42",
                        status="FAILED", logs={"prepare_data": "...", "train": "..."})

The Vertex run: prepare-data (done, its container CustomJob 2001), train (its launcher's
CustomJob 2002, and the training CustomJob 3003 that the launcher started, named by the task's
`gcp_resources` output), evaluate (pending); the training CustomJob is created in the fake with
a multi-node SPOT A100 spec and web-access URIs. The local record has the shape the local
target writes: <workdir>/runs/<run id>/run.json and logs/<step>.log.
"""

from __future__ import annotations

import json
from pathlib import Path

PROJECT, REGION = "proj-1", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
RUN_ID = "llm-finetune-20260105-030000-ab12"
TRAINING_JOB = f"{PARENT}/customJobs/3003"
WEB_ACCESS = {
    "workerpool0-0": "https://abc-dot-europe-west4.aiplatform-training.googleusercontent.com",
    "workerpool1-0": "https://def-dot-europe-west4.aiplatform-training.googleusercontent.com",
}


def task(name: str, task_id: int, state: str, *, started="", ended="", job="", **extra) -> dict:
    detail = {"taskId": str(task_id), "parentTaskId": "1", "taskName": name, "state": state}
    if started:
        detail["startTime"] = started
    if ended:
        detail["endTime"] = ended
    if job:
        detail["executorDetail"] = {"containerDetail": {"mainJob": f"{PARENT}/customJobs/{job}"}}
    return {**detail, **extra}


def gcp_resources(job_name: str) -> dict:
    """The execution metadata a GCPC CustomJob task records: its `gcp_resources` output."""
    uri = f"https://{REGION}-aiplatform.googleapis.com/v1/{job_name}"
    resources = {"resources": [{"resourceType": "CustomJob", "resourceUri": uri}]}
    return {"execution": {"metadata": {"output:gcp_resources": json.dumps(resources)}}}


def vertex_run(fake, *, states: list[str], run_id: str = RUN_ID, pipeline="llm-finetune") -> str:
    """Seed the run (and its training CustomJob) into `fake`; returns the run's name."""
    tasks = [
        {"taskId": "1", "taskName": pipeline, "state": "RUNNING"},  # the root DAG: the run itself
        task(
            "prepare-data",
            2,
            "SUCCEEDED",
            started="2026-01-05T03:00:40Z",
            ended="2026-01-05T03:04:10Z",
            job="2001",
        ),
        task(
            "train",
            3,
            "RUNNING",
            started="2026-01-05T03:04:15Z",
            job="2002",
            **gcp_resources(TRAINING_JOB),
        ),
        task("evaluate", 4, "PENDING"),
    ]
    body = {
        "displayName": run_id,
        "pipelineSpec": {"pipelineInfo": {"name": pipeline}},
        "createTime": "2026-01-05T03:00:00Z",
        "startTime": "2026-01-05T03:00:12Z",
        "jobDetail": {"taskDetails": tasks},
    }
    fake.custom_jobs.jobs[TRAINING_JOB] = _training_job()
    return fake.add_job(PARENT, run_id, body, states=states)


def _training_job():
    from tests.support.vertex_custom_jobs import Script, _Job

    machine = {
        "machineType": "a2-highgpu-8g",
        "acceleratorType": "NVIDIA_TESLA_A100",
        "acceleratorCount": 8,
    }
    resource = {
        "name": TRAINING_JOB,
        "displayName": "train",
        "jobSpec": {
            "workerPoolSpecs": [
                {"machineSpec": machine, "replicaCount": "1"},
                {"machineSpec": machine, "replicaCount": "1"},
            ],
            "scheduling": {"strategy": "SPOT"},
            "enableWebAccess": True,
        },
        "webAccessUris": WEB_ACCESS,
    }
    return _Job(resource=resource, script=Script(["JOB_STATE_RUNNING"]))


def local_run(
    workdir: Path,
    run_id: str,
    *,
    status: str,
    logs: dict[str, str],
    states: dict[str, str] | None = None,
    pipeline: str = "llm-finetune",
    started: str = "2026-01-05T03:00:00Z",
) -> Path:
    """A run record with a step per `logs` entry (state `done` unless `states` says), each
    step's log written; returns the run directory."""
    run_dir = workdir / "runs" / run_id
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    steps = []
    for index, (step, text) in enumerate(logs.items()):
        (run_dir / "logs" / f"{step}.log").write_text(text)
        state = (states or {}).get(step, "done")
        steps.append(
            {
                "name": step,
                "state": state,
                "started": f"2026-01-05T03:0{index}:00Z",
                "ended": f"2026-01-05T03:0{index}:30Z" if state in ("done", "failed") else None,
                "log": f"logs/{step}.log",
                "error": "error: data/bad.jsonl:17: missing field 'response'"
                if state == "failed"
                else None,
            }
        )
    record = {
        "pipeline": pipeline,
        "run_id": run_id,
        "status": status,
        "started": started,
        "ended": None if status == "RUNNING" else "2026-01-05T03:09:00Z",
        "params": {"preset": "debug"},
        "error": "prepare_data: error: data/bad.jsonl:17: missing field 'response'"
        if status == "FAILED"
        else "",
        "exit_code": {"RUNNING": None, "SUCCEEDED": 0}.get(status, 2),
        "steps": steps,
    }
    (run_dir / "run.json").write_text(json.dumps(record, indent=2))
    return run_dir
