"""The compiled vertex pipeline: byte-identical to the golden files, and the spec Vertex AI will
run — worker pools, scheduling, output directory, serving container, regions, images, secrets.

Regenerate the golden files after an intended change: make golden.
"""

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.pipelines.golden import CASES, HERE, compile_case
from tests.support.compiled import SECRET_CANARY, tasks, train_input

JOB_REGION = "{{$.pipeline_google_cloud_location}}"


@pytest.fixture(autouse=True)
def default_images(monkeypatch):
    monkeypatch.delenv("LIFTOFF_TRAINER_IMAGE", raising=False)
    monkeypatch.delenv("LIFTOFF_SERVING_IMAGE", raising=False)


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load((HERE / "llm-finetune.yaml").read_text())


@pytest.fixture(scope="module")
def multinode():
    return yaml.safe_load((HERE / "llm-finetune-a100x8-2nodes-spot.yaml").read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_yaml_matches_golden_file(name, tmp_path):
    compiled = compile_case(name, str(tmp_path / "p.yaml"))
    assert Path(compiled).read_bytes() == (HERE / f"{name}.yaml").read_bytes(), (
        f"{name} differs from tests/pipelines/golden; if intended, run `make golden`"
    )


def test_single_node_worker_pool(spec):
    pools = train_input(spec, "worker_pool_specs")
    assert len(pools) == 1
    machine = pools[0]["machine_spec"]
    assert machine["machine_type"] == "a2-highgpu-1g"
    assert machine["accelerator_type"] == "NVIDIA_TESLA_A100"
    assert machine["accelerator_count"] == 1
    assert pools[0]["replica_count"] == 1
    assert train_input(spec, "strategy") == "STANDARD"
    assert train_input(spec, "restart_job_on_worker_restart") is False


def test_multi_node_spot_worker_pools(multinode):
    pools = train_input(multinode, "worker_pool_specs")
    assert [p["replica_count"] for p in pools] == [1, 1]  # primary + (nodes - 1) workers
    for pool in pools:
        assert pool["machine_spec"] == {
            "machine_type": "a2-highgpu-8g",
            "accelerator_type": "NVIDIA_TESLA_A100",
            "accelerator_count": 8,
        }
    assert train_input(multinode, "strategy") == "SPOT"
    assert train_input(multinode, "restart_job_on_worker_restart") is True
    train = multinode["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train["nproc_per_node"]["runtimeValue"]["constant"] == 8  # torchrun, one per GPU


def test_training_job_output_directory_account_and_region(spec):
    train = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train["base_output_directory"] == {"componentInputParameter": "base_output_dir"}
    assert train["service_account"] == {"componentInputParameter": "service_account"}
    assert train["location"]["runtimeValue"]["constant"] == JOB_REGION


def test_every_gcpc_op_gets_the_job_region(spec):
    checked = []
    for _, task_name, task in tasks(spec):
        component = spec["components"][task["componentRef"]["name"]]
        declared = component.get("inputDefinitions", {}).get("parameters", {})
        if "location" in declared:
            passed = task["inputs"]["parameters"].get("location", {})
            assert passed.get("runtimeValue", {}).get("constant") == JOB_REGION, task_name
            checked.append(task_name)
    assert sorted(checked) == ["endpoint-create", "model-upload", "model-upload-2", "train"]


def test_upload_imports_the_serving_container_contract(spec):
    importer = spec["deploymentSpec"]["executors"]["exec-importer"]["importer"]
    assert importer["typeSchema"]["schemaTitle"] == "google.UnmanagedContainerModel"
    container = importer["metadata"]["containerSpec"]
    assert container["healthRoute"] == "/health"
    assert container["predictRoute"] == "/predict"
    assert container["ports"] == [{"containerPort": 8080}]
    assert container["imageUri"].startswith("us-docker.pkg.dev/liftoff-ml/liftoff/serving:")


def test_register_and_deploy_sit_behind_the_gate(spec):
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"prepare-data", "train", "evaluate", "gate", "condition-1"}
    condition = root["condition-1"]["triggerPolicy"]["condition"]
    assert "gate-Output" in condition and "== true" in condition
    gated = {name for comp, name, _ in tasks(spec) if comp != "root"}
    assert {"model-upload", "model-upload-2", "model-deploy", "endpoint-create"} <= gated
    deploy = spec["components"]["comp-model-deploy"]["inputDefinitions"]["parameters"]
    assert deploy["dedicated_resources_machine_type"]  # declared; the value is checked below
    task = next(t for _, n, t in tasks(spec) if n == "model-deploy")["inputs"]["parameters"]
    assert task["dedicated_resources_machine_type"]["runtimeValue"]["constant"] == "g2-standard-8"
    assert task["dedicated_resources_accelerator_type"]["runtimeValue"]["constant"] == "NVIDIA_L4"
    assert task["traffic_split"] == {"componentInputParameter": "pipelinechannel--traffic_split"}


def test_images_are_pinned(spec, multinode):
    images = [
        e["container"]["image"]
        for s in (spec, multinode)
        for e in s["deploymentSpec"]["executors"].values()
        if "container" in e
    ]
    images += [
        image
        for p in train_input(spec, "worker_pool_specs")
        for image in [p["container_spec"]["image_uri"]]
    ]
    assert len(images) > 10
    for image in images:
        assert not image.endswith(":latest") and re.search(r":[\w.-]+$|@sha256:", image), image


def test_no_secret_values(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET_CANARY)
    text = Path(compile_case("llm-finetune", str(tmp_path / "p.yaml"))).read_text()
    assert SECRET_CANARY not in text
    spec = yaml.safe_load(text)
    for pool in train_input(spec, "worker_pool_specs"):
        assert pool["container_spec"].get("env", []) == []
    secret = spec["root"]["inputDefinitions"]["parameters"]["wandb_secret"]
    assert secret["defaultValue"] == ""  # a Secret Manager resource name, given at submit
    assert "WANDB_API_KEY" not in json.dumps(spec)
