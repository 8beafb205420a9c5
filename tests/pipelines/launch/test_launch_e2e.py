"""W&B Launch onto Vertex end to end, on the wire: `liftoff launch job create`, a queue made from
`liftoff launch queue-config`, `liftoff launch submit`, and `liftoff launch agent` (W&B's own
agent with liftoff's runner) against the loopback W&B backend, the Vertex fake and the Secret
Manager fake. The first job's trainer really runs, with the CustomJob's command and env.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import yaml

from pipelines.cli import main
from tests.support.vertex_custom_jobs import Script
from tests.support.wandb_backend import API_KEY

SECRET = "projects/p/secrets/wandb-api-key/versions/1"
IMAGE = "us-docker.pkg.dev/p/liftoff/trainer:1.0"
QUEUE = "vertex-a100x8-spot"
SERVICE_ACCOUNT = "trainer@p.iam.gserviceaccount.com"
# A one-step run of the debug preset, small enough for CI's two cores.
SETS = [
    "optim.lr=0.002",
    "train.max_steps=1",
    "train.eval_batches=1",
    "train.exact_match_examples=0",
    "data.synthetic_examples=200",
]
PREEMPTED = "The replica workerpool0-0 was preempted (Spot VM reclaimed)."
WAIT_S = 180  # a bound for a broken agent, never reached when it works


@pytest.fixture
def launch_world(wandb_backend, vertex_fake, secret_manager, monkeypatch, tmp_path):
    """Both fakes and the agent's secret; wandb's agent polls fast and waits for no run."""
    from wandb.sdk.launch import loader
    from wandb.sdk.launch.agent import agent

    secret_manager.add(SECRET, API_KEY + "\n")
    monkeypatch.setenv("LIFTOFF_PROJECT", "p")
    monkeypatch.setattr(agent, "AGENT_POLLING_INTERVAL", 0.1)
    # The agent waits up to 60 s for a run that never called wandb.init (no trainer runs for
    # the cancelled and preempted jobs here); it then fails the queue item at once.
    monkeypatch.setattr(agent, "RUN_INFO_GRACE_PERIOD", 0)
    monkeypatch.setattr(loader, "runner_from_config", loader.runner_from_config)
    monkeypatch.chdir(tmp_path)
    yield wandb_backend, vertex_fake, secret_manager
    agent.LaunchAgent._instance = None
    import wandb

    wandb.teardown()


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def _container(body: dict) -> dict:
    return body["jobSpec"]["workerPoolSpecs"][0]["containerSpec"]


def _env(body: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in _container(body)["env"]}


def _run_trainer(body: dict, *, tmp_path, secret_manager_url: str) -> None:
    """What Vertex would do with the CustomJob: its command, its env, on this CPU machine."""
    command = [sys.executable, *_container(body)["command"][1:]]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "HF_HUB_OFFLINE": "1",
        **_env(body),
        "LIFTOFF_GPUS_PER_NODE": "0",  # this machine has no GPU; the job's would have 8
        "AIP_MODEL_DIR": str(tmp_path / "model"),
        "AIP_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
        "LIFTOFF_SECRET_MANAGER_ENDPOINT": secret_manager_url,
        "WANDB_DIR": str(tmp_path),
    }
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def test_submit_agent_vertex_end_to_end(launch_world, monkeypatch, tmp_path):
    backend, vertex, secrets = launch_world
    assert main(["launch", "job", "create", "llm", "--image", IMAGE]) == 0
    queue_file = tmp_path / "queue.yaml"
    assert main([
        "launch", "queue-config", "--hardware", "a100x8", "--spot",
        "--service-account", SERVICE_ACCOUNT, "--staging-bucket", "gs://p-liftoff/launch",
        "-o", str(queue_file),
    ]) == 0  # fmt: skip
    import wandb

    config = yaml.safe_load(queue_file.read_text())
    wandb.Api().create_run_queue(QUEUE, type="gcp-vertex", config=config)
    for _ in range(3):
        args = ["launch", "submit", "llm", "--queue", QUEUE, "--preset", "debug"]
        assert main([*args, *(f"--set={s}" for s in SETS)]) == 0
    gate = threading.Event()
    vertex.custom_jobs.scripts = [
        Script(["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"], gate=gate),
        Script(["JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_CANCELLED"]),
        Script(["JOB_STATE_RUNNING", "JOB_STATE_FAILED"], error=PREEMPTED),
        Script(["JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"]),
    ]
    monkeypatch.delenv("WANDB_API_KEY")  # the agent reads its own from Secret Manager
    agent_args = ["launch", "agent", "--queue", QUEUE, "--entity", backend.entity]
    exit_codes = []
    agent = threading.Thread(
        target=lambda: exit_codes.append(main([*agent_args, "--wandb-secret", SECRET]))
    )
    agent.start()
    try:
        _wait(lambda: vertex.custom_jobs.bodies, "the first CustomJob")
        _run_trainer(
            vertex.custom_jobs.bodies[0], tmp_path=tmp_path, secret_manager_url=secrets.url
        )
        gate.set()
        # The agent is done with the requeued run once it has settled its queue item.
        items = backend.launch.items
        _wait(lambda: len(items) == 4 and items["rqi-4"].state == "FAILED", "the 4th run")
    finally:
        for a in backend.launch.agents.values():
            a.stop_polling = True
        agent.join(WAIT_S)
    assert exit_codes == [0]
    assert backend.unknown == []  # every operation wandb sent was one this backend knows
    _check_jobs(vertex.custom_jobs.bodies, vertex)
    _check_queue(backend)
    _check_trainer_run(backend, run_id=_env(vertex.custom_jobs.bodies[0])["WANDB_RUN_ID"])
    # The agent read its key from Secret Manager (then the trainer read its own).
    assert [r.path for r in secrets.requests] == [f"/v1/{SECRET}:access"] * 2


def _check_jobs(bodies: list[dict], vertex) -> None:
    from google.cloud.aiplatform_v1.types import AcceleratorType, Scheduling

    assert len(bodies) == 4  # three runs, and the preempted one once more
    for body in bodies:
        text = json.dumps(body)
        assert "WANDB_API_KEY" not in text and API_KEY not in text
        pool = body["jobSpec"]["workerPoolSpecs"][0]
        assert pool["machineSpec"] == {
            "machineType": "a2-highgpu-8g",
            "acceleratorType": AcceleratorType.NVIDIA_TESLA_A100.value,
            "acceleratorCount": 8,
        }
        assert pool["diskSpec"] == {"bootDiskType": "pd-ssd", "bootDiskSizeGb": 500}
        assert pool["containerSpec"]["imageUri"] == IMAGE
        assert body["jobSpec"]["scheduling"]["strategy"] == Scheduling.Strategy.SPOT.value
        assert body["jobSpec"]["serviceAccount"] == SERVICE_ACCOUNT
        command = pool["containerSpec"]["command"]
        assert command == [
            "python",
            "-m",
            "trainers.llm",
            "--preset",
            "debug",
            "--wandb-secret",
            SECRET,
        ]
        run_id = _env(body)["WANDB_RUN_ID"]
        assert body["labels"]["wandb-run-id"] == run_id
        output_dir = body["jobSpec"]["baseOutputDirectory"]["outputUriPrefix"]
        assert output_dir == f"gs://p-liftoff/launch/liftoff/{run_id}"
    first, _, preempted, resumed = (_env(b) for b in bodies)
    assert json.loads(first["WANDB_CONFIG"]) == {
        "preset": "debug",
        "optim": {"lr": 0.002},
        "train": {"max_steps": 1, "eval_batches": 1, "exact_match_examples": 0},
        "data": {"synthetic_examples": 200},
    }
    # Requeued as the same run, in the same output directory: the trainer resumes there.
    assert resumed["WANDB_RUN_ID"] == preempted["WANDB_RUN_ID"]
    assert resumed["WANDB_RESUME"] == "allow" and "WANDB_RESUME" not in preempted
    polls = vertex.custom_jobs.states()
    assert [p[-1] for p in polls] == [
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_FAILED",
        "JOB_STATE_SUCCEEDED",
    ]
    assert polls[0][:2] == ["JOB_STATE_QUEUED", "JOB_STATE_RUNNING"]


def _check_queue(backend) -> None:
    """Each job ended and freed the agent's one slot (--max-jobs 1), so the next was popped."""
    items = list(backend.launch.items.values())
    assert [i.state for i in items] == ["CLAIMED", "FAILED", "FAILED", "FAILED"]
    assert items[0].failure is None  # the trainer ran: the agent found its W&B run
    # No trainer ran for the others here, which the agent reports on their queue items.
    assert {i.failure["stage"] for i in items[1:]} == {"run"}
    assert items[3].run_spec["_resume_count"] == 1 and "_resume_count" not in items[2].run_spec
    assert items[3].run_spec["run_id"] == items[2].run_name
    agent = next(iter(backend.launch.agents.values()))
    assert agent.config["max_jobs"] == 1 and agent.statuses[-1] == "KILLED"
    pops = [r for r in backend.requests if r.operation in ("popFromRunQueue", "ackRunQueueItem")]
    acks = [r.variables["itemId"] for r in pops if r.operation == "ackRunQueueItem"]
    assert acks == ["rqi-1", "rqi-2", "rqi-3", "rqi-4"]


def _check_trainer_run(backend, *, run_id: str) -> None:
    """The trainer's W&B run took the submitted values: its config as it uploaded it."""
    run = backend.runs[f"{backend.entity}/liftoff/{run_id}"]
    assert run.state == "finished" and run.job_type == "train"
    assert run.config["preset"] == "debug"
    assert run.config["optim"]["lr"] == 0.002  # the preset's own is 0.003
    assert run.config["train"]["max_steps"] == 1
    assert run.config["data"]["synthetic_examples"] == 200
    assert run.summary["global_step"] == 1
    assert f"{backend.entity}/liftoff/liftoff-llm:v0" in run.inputs  # the job, as lineage
