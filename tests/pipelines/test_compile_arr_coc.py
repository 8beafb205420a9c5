"""The compiled arr-coc pipeline: three chained CustomJobs (each stage starts from the model of
the one before, on one A100, as the pipeline job's own service account), the ARR-COC trainer in
every trainer step, the gate in front of register and deploy, sample instances with a budget.
Byte-identity with the golden file is checked with the others in test_compile.py (CASES).

    .venv/bin/python -m pytest -q tests/pipelines/test_compile_arr_coc.py
"""

import base64
import io

import pytest
import yaml
from PIL import Image

from pipelines.catalog import get_pipeline
from tests.pipelines.contract import custom_job, task_value
from tests.pipelines.golden import HERE
from tests.support.compiled import tasks

STAGES = ("stage-1", "stage-2", "stage-3")
JOB_SERVICE_ACCOUNT = "{{$.pipeline_service_account}}"


@pytest.fixture(scope="module")
def spec():
    return yaml.safe_load((HERE / "arr-coc.yaml").read_text())


def test_three_custom_jobs_each_from_the_model_before_it(spec):
    root = spec["root"]["dag"]["tasks"]
    assert "init_model" not in root["stage-1"]["inputs"].get("artifacts", {})
    chain = (("stage-1", "stage-2", "init_model"), ("stage-2", "stage-3", "init_model"))
    for before, step, given in (*chain, ("stage-3", "evaluate", "model")):
        source = root[step]["inputs"]["artifacts"][given]["taskOutputArtifact"]
        assert source == {"outputArtifactKey": "model", "producerTask": before}, step
    for n, stage in enumerate(STAGES, start=1):
        assert task_value(spec, stage, "trainer_args") == ["--stage", str(n)]
        job = custom_job(spec, stage)
        assert job.display_name == stage
        (pool,) = job.job_spec.worker_pool_specs
        machine = pool.machine_spec
        assert (machine.machine_type, machine.accelerator_type.name) == (
            "a2-highgpu-1g",
            "NVIDIA_TESLA_A100",
        )
        assert machine.accelerator_count == 1
        prefix = job.job_spec.base_output_directory.output_uri_prefix
        assert prefix == f"{{{{$.pipeline_root}}}}/{{{{$.pipeline_job_name}}}}/{stage}"


def test_every_stage_trains_as_the_pipeline_jobs_service_account(spec):
    for stage in STAGES:
        assert custom_job(spec, stage).job_spec.service_account == JOB_SERVICE_ACCOUNT, stage
    assert task_value(spec, "model-deploy", "service_account") == JOB_SERVICE_ACCOUNT
    assert "service_account" not in spec["root"]["inputDefinitions"]["parameters"]


def test_every_trainer_step_runs_the_arr_coc_trainer(spec):
    for step in ("prepare-data", *STAGES, "evaluate"):
        assert task_value(spec, step, "trainer") == "arr_coc", step


def test_register_and_deploy_sit_behind_the_gate(spec):
    root = spec["root"]["dag"]["tasks"]
    assert set(root) == {"prepare-data", *STAGES, "evaluate", "gate", "condition-1"}
    condition = root["condition-1"]["triggerPolicy"]["condition"]
    assert "gate-Output" in condition and "== true" in condition
    gated = {name for component, name, _ in tasks(spec) if component != "root"}
    assert {"model-upload", "model-upload-2", "endpoint-create", "model-deploy"} <= gated


def test_the_deploy_check_asks_about_scenes_each_at_its_own_budget(spec):
    params = spec["root"]["inputDefinitions"]["parameters"]
    instances = params["sample_instances"]["defaultValue"]
    assert [set(i) for i in instances] == [{"image", "prompt", "budget"}] * 2
    assert [i["budget"] for i in instances] == [0.25, 0.5]
    assert params["gate_metric"]["defaultValue"] == get_pipeline("arr-coc").gate_metric


def test_sample_instances_are_rendered_scenes_written_out():
    from trainers.arr_coc.scenes import scene_records

    declared, rendered = get_pipeline("arr-coc").sample_instances, scene_records(2, seed=5)
    assert [i["prompt"] for i in declared] == [r["question"] for r in rendered]
    for ours, theirs in zip(declared, rendered, strict=True):
        assert _pixels(ours["image"]) == _pixels(theirs["image"])  # PNG bytes may differ
        assert len(set(_pixels(ours["image"]))) >= 3  # white, grey and a colour: no blank


def _pixels(image: dict) -> list:
    picture = Image.open(io.BytesIO(base64.b64decode(image["b64"]))).convert("RGB")
    raw = picture.tobytes()
    return [raw[i : i + 3] for i in range(0, len(raw), 3)]
