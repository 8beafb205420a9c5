"""The compiled vertex pipeline: byte-identical to the golden files, and the spec Vertex AI will
run, read as it runs it (tests/pipelines/contract.py): the CustomJob's worker pools, identity,
scheduling, disks and output directory, the other steps' machines and images, the serving
container, regions, secrets.

Regenerate the golden files after an intended change: make golden.
"""

import json
from pathlib import Path

import pytest
import yaml
from google.cloud.aiplatform_v1 import Scheduling

from components.images import GOOGLE_STEPS_IMAGE, Images
from pipelines.compile import compile_pipeline
from pipelines.hardware import get_profile
from tests.pipelines.contract import (
    container_resources,
    custom_job,
    executor,
    find_task,
    task_value,
)
from tests.pipelines.golden import CASES, HERE, IMAGES, compile_case
from tests.support.compiled import SECRET_CANARY, tasks, train_input

JOB_REGION = "{{$.pipeline_google_cloud_location}}"
JOB_SERVICE_ACCOUNT = "{{$.pipeline_service_account}}"
GOLDEN_IMAGES = Images(trainer=IMAGES["trainer"], serving=IMAGES["serving-gpu"])


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load((HERE / "llm-finetune.yaml").read_text())


@pytest.fixture(scope="module")
def multinode():
    return yaml.safe_load((HERE / "llm-finetune-a100x8-2nodes-spot.yaml").read_text())


def compiled(tmp_path, pipeline="llm-finetune", *, hardware="a100x1", **options):
    profile = get_profile(hardware).with_options(**options)
    path = compile_pipeline(
        pipeline, hardware=profile, images=GOLDEN_IMAGES, path=str(tmp_path / f"{hardware}.yaml")
    )
    return yaml.safe_load(Path(path).read_text())


@pytest.fixture(scope="module")
def by_profile(tmp_path_factory, spec, multinode):
    """llm-finetune compiled for each profile these tests read (a100: the golden files)."""
    out = tmp_path_factory.mktemp("profiles")
    specs = {"a100x1": spec, "a100x8": multinode}
    specs |= {hardware: compiled(out, hardware=hardware) for hardware in ("l4x1", "h200x8", "cpu")}
    specs["b200x8"] = compiled(out, hardware="b200x8", scheduling="FLEX_START", timeout_s=7200)
    return specs


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_yaml_matches_golden_file(name, tmp_path):
    compiled = compile_case(name, str(tmp_path / "p.yaml"))
    assert Path(compiled).read_bytes() == (HERE / f"{name}.yaml").read_bytes(), (
        f"{name} differs from tests/pipelines/golden; if intended, run `make golden`"
    )


def test_single_node_worker_pool(spec):
    job = custom_job(spec)
    (pool,) = job.job_spec.worker_pool_specs
    assert pool.machine_spec.machine_type == "a2-highgpu-1g"
    assert pool.machine_spec.accelerator_type.name == "NVIDIA_TESLA_A100"
    assert pool.machine_spec.accelerator_count == 1
    assert pool.replica_count == 1
    assert job.job_spec.scheduling.strategy == Scheduling.Strategy.STANDARD
    assert job.job_spec.scheduling.restart_job_on_worker_restart is False
    assert job.job_spec.scheduling.timeout.total_seconds() == 7 * 24 * 3600


def test_multi_node_spot_worker_pools(multinode):
    job = custom_job(multinode)
    pools = job.job_spec.worker_pool_specs
    assert [p.replica_count for p in pools] == [1, 1]  # primary + (nodes - 1) workers
    for pool in pools:
        assert pool.machine_spec.machine_type == "a2-highgpu-8g"
        assert pool.machine_spec.accelerator_count == 8
    assert job.job_spec.scheduling.strategy == Scheduling.Strategy.SPOT
    assert job.job_spec.scheduling.restart_job_on_worker_restart is True
    assert task_value(multinode, "train", "nproc_per_node") == 8  # torchrun, one per GPU


def test_training_job_runs_as_the_pipeline_jobs_own_service_account(spec):
    # Vertex resolves the placeholder to the PipelineJob's account: a run from the uploaded
    # template, the console or a schedule trains as that account too.
    assert custom_job(spec).job_spec.service_account == JOB_SERVICE_ACCOUNT
    assert "service_account" not in spec["root"]["inputDefinitions"]["parameters"]
    assert task_value(spec, "model-deploy", "service_account") == JOB_SERVICE_ACCOUNT


def test_each_run_trains_in_its_own_output_directory(spec):
    # Resolved per run, so scheduled runs never share checkpoints; nothing is baked in at submit.
    prefix = custom_job(spec).job_spec.base_output_directory.output_uri_prefix
    assert prefix == "{{$.pipeline_root}}/{{$.pipeline_job_name}}/train"
    assert "base_output_dir" not in spec["root"]["inputDefinitions"]["parameters"]


def test_every_gcpc_op_gets_the_job_region(spec):
    checked = []
    for _, task_name, task in tasks(spec):
        component = spec["components"][task["componentRef"]["name"]]
        if "location" in component.get("inputDefinitions", {}).get("parameters", {}):
            assert task_value(spec, task_name, "location") == JOB_REGION, task_name
            checked.append(task_name)
    assert sorted(checked) == ["endpoint-create", "model-upload", "model-upload-2", "train"]


@pytest.mark.parametrize(
    ("hardware", "accelerator", "cpu", "memory_gb"),
    [
        ("a100x1", "NVIDIA_TESLA_A100", 12, 85),
        ("a100x8", "NVIDIA_TESLA_A100", 12, 85),  # one of the eight, on a2-highgpu-1g's share
        ("l4x1", "NVIDIA_L4", 12, 48),
        ("h200x8", "NVIDIA_H100_80GB", 26, 234),  # no one-GPU H200 machine exists
        ("cpu", "", 8, 32),
    ],
)
def test_evaluate_gets_a_gpu_and_memory_from_the_hardware_profile(
    by_profile, hardware, accelerator, cpu, memory_gb
):
    resources = container_resources(by_profile[hardware], "evaluate")
    assert (resources.resource_cpu_limit, resources.resource_memory_limit) == (
        str(cpu),
        f"{memory_gb}G",
    )
    assert resources.accelerator.resource_type == accelerator
    assert resources.accelerator.resource_count == ("1" if accelerator else "")


def test_prepare_data_is_sized_and_the_gate_is_small(spec):
    resources = container_resources(spec, "prepare-data")
    assert (resources.resource_cpu_limit, resources.resource_memory_limit) == ("8", "32G")
    # The gate needs only Python: Google's own step image, which the run pulls anyway.
    assert executor(spec, "gate").container.image == GOOGLE_STEPS_IMAGE
    assert IMAGES["trainer"] != GOOGLE_STEPS_IMAGE


@pytest.mark.parametrize(
    ("hardware", "disk"),
    [("h200x8", "hyperdisk-balanced"), ("b200x8", "hyperdisk-balanced"), ("a100x8", "pd-ssd")],
)
def test_the_boot_disk_type_comes_from_the_profile(by_profile, hardware, disk):
    for pool in custom_job(by_profile[hardware]).job_spec.worker_pool_specs:
        assert pool.disk_spec.boot_disk_type == disk
        assert pool.disk_spec.boot_disk_size_gb == 500


def test_the_job_tells_the_trainer_how_many_gpus_each_node_has(multinode, by_profile):
    for pool in custom_job(multinode).job_spec.worker_pool_specs:
        assert {e.name: e.value for e in pool.container_spec.env} == {"LIFTOFF_GPUS_PER_NODE": "8"}
    (pool,) = custom_job(by_profile["cpu"]).job_spec.worker_pool_specs
    assert {e.name: e.value for e in pool.container_spec.env} == {"LIFTOFF_GPUS_PER_NODE": "0"}


def test_flex_start_with_a_timeout_reaches_the_job(by_profile):
    job = custom_job(by_profile["b200x8"])
    assert job.job_spec.scheduling.strategy == Scheduling.Strategy.FLEX_START
    assert job.job_spec.scheduling.timeout.total_seconds() == 7200


def test_upload_imports_the_serving_container_contract(spec):
    importer = spec["deploymentSpec"]["executors"]["exec-importer"]["importer"]
    assert importer["typeSchema"]["schemaTitle"] == "google.UnmanagedContainerModel"
    container = importer["metadata"]["containerSpec"]
    assert container["healthRoute"] == "/health"
    assert container["predictRoute"] == "/predict"
    assert container["ports"] == [{"containerPort": 8080}]
    # The serving profile (l4x1 by default) has a GPU: the CUDA build serves.
    assert container["imageUri"] == IMAGES["serving-gpu"]


def test_register_and_deploy_sit_behind_the_gate(spec):
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"prepare-data", "train", "evaluate", "gate", "condition-1"}
    condition = root["condition-1"]["triggerPolicy"]["condition"]
    assert "gate-Output" in condition and "== true" in condition
    gated = {name for comp, name, _ in tasks(spec) if comp != "root"}
    assert {"model-upload", "model-upload-2", "model-deploy", "endpoint-create"} <= gated
    assert task_value(spec, "model-deploy", "dedicated_resources_machine_type") == "g2-standard-8"
    assert task_value(spec, "model-deploy", "dedicated_resources_accelerator_type") == "NVIDIA_L4"


def test_uploads_take_their_aliases_from_the_default_version_step(spec):
    for upload in ("model-upload", "model-upload-2"):
        _, task = next((c, t) for c, n, t in tasks(spec) if n == upload)
        given = task["inputs"]["parameters"]["version_aliases"]
        assert given == {"componentInputParameter": "pipelinechannel--version-aliases-Output"}
    aliases = next(t for _, n, t in tasks(spec) if n == "version-aliases")["inputs"]["parameters"]
    assert aliases["make_default"] == {
        "componentInputParameter": "pipelinechannel--default_version"
    }
    assert spec["root"]["inputDefinitions"]["parameters"]["default_version"]["defaultValue"] is True


def test_uploads_are_labelled_with_the_run_when_it_runs(spec):
    # Not a value fixed at submit: a template or schedule would give every run the same one.
    for upload in ("model-upload", "model-upload-2"):
        _, task = next((c, t) for c, n, t in tasks(spec) if n == upload)
        given = task["inputs"]["parameters"]["labels"]
        assert given == {"componentInputParameter": "pipelinechannel--run-labels-Output"}
    labels = next(t for _, n, t in tasks(spec) if n == "run-labels")["inputs"]["parameters"]
    assert labels["run"] == {"runtimeValue": {"constant": "{{$.pipeline_job_name}}"}}
    assert labels["labels"] == {"componentInputParameter": "pipelinechannel--model_labels"}


def test_images_are_the_resolved_ones(spec, multinode):
    images = {
        e["container"]["image"]
        for s in (spec, multinode)
        for e in s["deploymentSpec"]["executors"].values()
        if "container" in e
    }
    images |= {p.container_spec.image_uri for p in custom_job(spec).job_spec.worker_pool_specs}
    assert images == {IMAGES["trainer"], GOOGLE_STEPS_IMAGE}


def test_every_pipeline_input_has_a_description(spec):
    for name in CASES:
        params = yaml.safe_load((HERE / f"{name}.yaml").read_text())["root"]["inputDefinitions"]
        undescribed = [p for p, d in params["parameters"].items() if not d.get("description")]
        assert params["parameters"] and undescribed == [], name


def test_the_hf_secret_name_reaches_every_step_that_loads_a_model(spec):
    for step in ("prepare-data", "train", "evaluate"):
        given = find_task(spec, step)[1]["inputs"]["parameters"]["hf_secret"]
        assert given == {"componentInputParameter": "hf_secret"}, step
    # The serving container reads it at start (serving/__main__.py): its name, in the spec.
    importer = find_task(spec, "importer")[1]["inputs"]["parameters"]["metadata"]
    assert importer == {"componentInputParameter": "pipelinechannel--hf_secret"}
    container = spec["deploymentSpec"]["executors"]["exec-importer"]["importer"]["metadata"]
    assert container["containerSpec"]["env"] == [
        {"name": "LIFTOFF_HF_SECRET", "value": "{{$.inputs.parameters['metadata']}}"}
    ]


def test_no_secret_values(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", SECRET_CANARY)
    monkeypatch.setenv("HF_TOKEN", SECRET_CANARY)
    text = Path(compile_case("llm-finetune", str(tmp_path / "p.yaml"))).read_text()
    assert SECRET_CANARY not in text
    spec = yaml.safe_load(text)
    for pool in train_input(spec, "worker_pool_specs"):
        assert [e["name"] for e in pool["container_spec"]["env"]] == ["LIFTOFF_GPUS_PER_NODE"]
    for secret in ("wandb_secret", "hf_secret"):
        # Secret Manager version names, given at submit; each step reads the value itself.
        assert spec["root"]["inputDefinitions"]["parameters"][secret]["defaultValue"] == ""
    container = spec["deploymentSpec"]["executors"]["exec-importer"]["importer"]["metadata"]
    assert [e["name"] for e in container["containerSpec"]["env"]] == ["LIFTOFF_HF_SECRET"]
    assert "WANDB_API_KEY" not in json.dumps(spec)
