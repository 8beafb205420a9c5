"""The compiled vlm-ddp pipeline: DDP on a2-highgpu-8g nodes (8×A100, one trainer process per
GPU), one or more nodes, spot or flex-start; the VLM trainer in every trainer step; the gate
in front of register and deploy; no secrets. Byte-identity with the golden files is checked
with llm-finetune's in test_compile.py (CASES)."""

import json
from pathlib import Path

import pytest
import yaml

from components.images import Images
from pipelines.compile import compile_pipeline
from pipelines.hardware import get_profile
from tests.pipelines.golden import HERE, IMAGES, compile_case
from tests.support.compiled import SECRET_CANARY, constant, tasks, train_input

A100X8 = {
    "machine_type": "a2-highgpu-8g",
    "accelerator_type": "NVIDIA_TESLA_A100",
    "accelerator_count": 8,
}


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load((HERE / "vlm-ddp.yaml").read_text())


@pytest.fixture(scope="module")
def two_nodes():
    return yaml.safe_load((HERE / "vlm-ddp-a100x8-2nodes.yaml").read_text())


def _root_task(spec: dict, name: str) -> dict:
    return spec["root"]["dag"]["tasks"][name]


def test_default_hardware_is_one_a2_highgpu_8g_node_with_8_processes(spec):
    (pool,) = train_input(spec, "worker_pool_specs")
    assert pool["machine_spec"] == A100X8
    assert pool["replica_count"] == 1
    assert train_input(spec, "strategy") == "STANDARD"
    assert train_input(spec, "restart_job_on_worker_restart") is False
    # The trainer relaunches itself under torchrun with this many processes per node.
    assert constant(_root_task(spec, "train"), "nproc_per_node") == 8


def test_two_nodes_are_a_primary_pool_and_a_worker_pool(two_nodes):
    pools = train_input(two_nodes, "worker_pool_specs")
    assert [p["replica_count"] for p in pools] == [1, 1]  # workerpool0: 1, workerpool1: nodes - 1
    assert [p["machine_spec"] for p in pools] == [A100X8, A100X8]
    images = {p["container_spec"]["image_uri"] for p in pools}
    assert len(images) == 1  # every node runs the same trainer image
    assert train_input(two_nodes, "restart_job_on_worker_restart") is True
    assert constant(_root_task(two_nodes, "train"), "nproc_per_node") == 8


@pytest.mark.parametrize("scheduling", ["SPOT", "FLEX_START"])
def test_spot_and_flex_start_reach_the_training_job(scheduling, tmp_path):
    profile = get_profile("a100x8").with_options(nodes=2, scheduling=scheduling)
    images = Images(trainer=IMAGES["trainer"], serving=IMAGES["serving-gpu"])
    path = compile_pipeline(
        "vlm-ddp", hardware=profile, images=images, path=str(tmp_path / "p.yaml")
    )
    spec = yaml.safe_load(Path(path).read_text())
    assert train_input(spec, "strategy") == scheduling
    assert [p["replica_count"] for p in train_input(spec, "worker_pool_specs")] == [1, 1]


@pytest.mark.parametrize("fixture", ["spec", "two_nodes"])
def test_every_trainer_step_runs_the_vlm_trainer(fixture, request):
    spec = request.getfixturevalue(fixture)
    for step in ("prepare-data", "train", "evaluate"):
        assert constant(_root_task(spec, step), "trainer") == "vlm", step
    assert "trainer" in spec["components"]["comp-train"]["inputDefinitions"]["parameters"]


def test_pipeline_defaults_gate_on_vqa_exact_match_and_deploy_an_image(spec):
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert params["gate_metric"]["defaultValue"] == "vqa_exact_match"
    assert 0.0 < params["gate_threshold"]["defaultValue"] < 1.0
    assert params["preset"]["defaultValue"] == "debug"
    instances = params["sample_instances"]["defaultValue"]
    assert instances and all(set(i) == {"image", "prompt"} for i in instances)
    assert all(i["image"]["b64"].startswith("iVBOR") for i in instances)  # PNG, base64
    evaluate = _root_task(spec, "evaluate")["inputs"]["parameters"]
    assert evaluate["gate_metric"] == {"componentInputParameter": "gate_metric"}


def test_register_and_deploy_sit_behind_the_gate(spec):
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"prepare-data", "train", "evaluate", "gate", "condition-1"}
    condition = root["condition-1"]["triggerPolicy"]["condition"]
    assert "gate-Output" in condition and "== true" in condition
    gated = {name for component, name, _ in tasks(spec) if component != "root"}
    assert {"model-upload", "model-upload-2", "endpoint-create", "model-deploy"} <= gated
    deploy = next(t for _, name, t in tasks(spec) if name == "model-deploy")
    assert constant(deploy, "dedicated_resources_machine_type") == "g2-standard-8"


def test_no_secret_values(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET_CANARY)
    text = Path(compile_case("vlm-ddp-a100x8-2nodes", str(tmp_path / "p.yaml"))).read_text()
    assert SECRET_CANARY not in text
    spec = yaml.safe_load(text)
    for pool in train_input(spec, "worker_pool_specs"):
        assert pool["container_spec"]["env"] == [{"name": "LIFTOFF_GPUS_PER_NODE", "value": "8"}]
    assert spec["root"]["inputDefinitions"]["parameters"]["wandb_secret"]["defaultValue"] == ""
    assert "WANDB_API_KEY" not in json.dumps(spec)
