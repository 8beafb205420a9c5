"""The pipeline factory: a pipeline is a declaration, its parameters are declared once (types and
descriptions included), and a trainer trained in stages is a declaration too.

.venv/bin/python -m pytest -q tests/pipelines/test_declaration.py
"""

import dataclasses
import io

import pytest
import yaml
from google.protobuf import json_format
from PIL import Image

from components.images import Images
from pipelines.catalog import PIPELINES, get_pipeline
from pipelines.declaration import TrainStage
from pipelines.hardware import get_profile
from pipelines.targets import LocalTarget, VertexTarget
from tests.pipelines.contract import custom_job, task_value
from tests.pipelines.golden import HERE, IMAGES
from tests.support.imports import modules_after, within

STAGES = tuple(TrainStage(name=f"stage-{n}", trainer_args=("--stage", str(n))) for n in (1, 2, 3))


@pytest.fixture(scope="module")
def staged():
    """A three-stage pipeline, as the ARR-COC one will be declared (here on the LLM trainer)."""
    return dataclasses.replace(get_pipeline("llm-finetune"), name="staged", stages=STAGES)


@pytest.mark.parametrize(
    ("name", "golden"),
    [("llm-finetune", "llm-finetune"), ("vlm-ddp", "vlm-ddp"), ("arr-coc", "arr-coc")],
)
def test_parameter_types_and_defaults_are_the_declared_ones(name, golden):
    compiled = yaml.safe_load((HERE / f"{golden}.yaml").read_text())["root"]["inputDefinitions"]
    declared = get_pipeline(name).parameters()
    assert {p.name: p.kind for p in declared} == {
        name: body["parameterType"] for name, body in compiled["parameters"].items()
    }
    for param in declared:
        body = compiled["parameters"][param.name]
        assert body["description"] == param.description
        assert body["defaultValue"] == param.default, param.name


def test_run_types_its_parameters_without_building_the_vertex_pipeline():
    loaded = modules_after(
        """
from pipelines.cli import main
assert main(["run", "llm-finetune", "--param", "max_steps=abc"]) == 2
"""
    )
    assert "pipelines.params" in loaded  # the check can see imports
    assert within(loaded, ["google_cloud_pipeline_components", "kfp"]) == []


def test_each_stage_trains_from_the_model_before_it(staged):
    target = VertexTarget(
        hardware=get_profile("a100x8"),
        images=Images(trainer=IMAGES["trainer"], serving=IMAGES["serving-gpu"]),
    )
    spec = json_format.MessageToDict(staged.build(target).pipeline_spec)
    root = spec["root"]["dag"]["tasks"]
    assert {"stage-1", "stage-2", "stage-3", "evaluate"} <= set(root)
    assert "init_model" not in root["stage-1"]["inputs"].get("artifacts", {})
    for before, stage in (("stage-1", "stage-2"), ("stage-2", "stage-3"), ("stage-3", "evaluate")):
        model = root[stage]["inputs"]["artifacts"]["init_model" if stage != "evaluate" else "model"]
        assert model["taskOutputArtifact"] == {"outputArtifactKey": "model", "producerTask": before}
    for n, stage in enumerate(("stage-1", "stage-2", "stage-3"), start=1):
        assert task_value(spec, stage, "trainer_args") == ["--stage", str(n)]
        job = custom_job(spec, stage)
        assert job.display_name == stage
        prefix = job.job_spec.base_output_directory.output_uri_prefix
        assert prefix == f"{{{{$.pipeline_root}}}}/{{{{$.pipeline_job_name}}}}/{stage}"


def test_stages_keep_their_checkpoints_apart_on_the_local_target(staged, tmp_path):
    target = LocalTarget(run_dir=str(tmp_path / "run"), registry_dir=str(tmp_path / "registry"))
    spec = json_format.MessageToDict(staged.build(target).pipeline_spec)
    dirs = [task_value(spec, stage.name, "checkpoint_dir") for stage in STAGES]
    assert dirs == [str(tmp_path / "run" / "checkpoints" / s.name) for s in STAGES]


@pytest.mark.parametrize("name", list(PIPELINES))
def test_declared_gate_metrics_are_the_trainers_own(name):
    from components.common import trainer_steps

    pipeline = get_pipeline(name)
    assert pipeline.gate_metrics == trainer_steps(pipeline.trainer).gate_metrics
    assert pipeline.gate_metric == pipeline.gate_metrics[0]


def test_vlm_sample_instances_are_the_synthetic_set_written_out():
    from trainers.vlm.synthetic import sample_instances

    declared, rendered = get_pipeline("vlm-ddp").sample_instances, sample_instances()
    assert [i["prompt"] for i in declared] == [i["prompt"] for i in rendered]
    for ours, theirs in zip(declared, rendered, strict=True):
        assert _pixels(ours) == _pixels(theirs)  # PNG bytes may differ between Pillow versions
        assert len(set(_pixels(ours))) == 2  # a shape on white: the guard against blank images


def _pixels(instance: dict) -> list:
    import base64

    image = Image.open(io.BytesIO(base64.b64decode(instance["image"]["b64"])))
    return list(image.convert("RGB").tobytes())
