"""`liftoff run arr-coc --preset debug` end to end on the local target, each stage cut to a few
steps (conftest.py's ARR_COC_TINY): prepare_data, three training stages each from the model of
the one before, evaluate, gate, register, and the registered model served, answering the
pipeline's sample scenes with the cells it kept at each one's budget.

    .venv/bin/python -m pytest -q tests/e2e/test_arr_coc.py
"""

import json

import pytest

from pipelines.catalog import get_pipeline
from pipelines.local_records import local_status
from serving.registry import LocalRegistry

pytestmark = pytest.mark.slow

STEPS = [
    "prepare-data",
    "stage-1",
    "stage-2",
    "stage-3",
    "evaluate",
    "gate",
    "register-local",
    "deploy-local",
]


def test_every_step_runs_in_order_and_the_model_is_registered(arr_coc_run):
    status = local_status(str(arr_coc_run.workdir / ".liftoff"), arr_coc_run.run_dir().name)
    assert status["state"] == "SUCCEEDED"
    assert [(t["name"], t["state"]) for t in status["tasks"]] == [(s, "done") for s in STEPS]
    registry = LocalRegistry(str(arr_coc_run.workdir / ".liftoff" / "registry"))
    version = registry.resolve("arr-coc@latest")
    gate_metric = get_pipeline("arr-coc").gate_metric
    assert gate_metric in version.metrics
    assert "  registered: arr-coc@1 (latest)" in arr_coc_run.output.splitlines()


def test_each_stage_started_from_the_model_before_it(arr_coc_run):
    logs = arr_coc_run.run_dir() / "logs"
    for before, stage in (("stage-1", "stage-2"), ("stage-2", "stage-3")):
        log = (logs / f"{stage}.log").read_text()
        assert "--init-model" in log and f"/{before}/model" in log, stage
    assert "--init-model" not in (logs / "stage-1.log").read_text()


def test_the_deploy_check_answers_with_the_kept_cells_at_each_budget(arr_coc_run):
    registry = LocalRegistry(str(arr_coc_run.workdir / ".liftoff" / "registry"))
    check = registry.resolve("arr-coc@1").deployments[-1]
    samples = get_pipeline("arr-coc").sample_instances
    assert check["healthy"] and [i["prompt"] for i in check["instances"]] == [
        s["prompt"] for s in samples
    ]
    for sample, prediction in zip(samples, check["predictions"], strict=True):
        assert isinstance(prediction["answer"], str)  # two steps a stage: often ""
        rows, cols = prediction["grid"]
        total = rows * cols
        assert prediction["visual_tokens"] == {
            "kept": round(sample["budget"] * total),
            "total": total,
        }
        assert len({tuple(c) for c in prediction["kept_cells"]}) == round(sample["budget"] * total)
    line = next(x for x in arr_coc_run.output.splitlines() if x.startswith("  deploy check: "))
    assert "kept_cells" in line and "iVBOR" not in line
    assert json.dumps(check["predictions"])  # as the registry stores it: plain JSON
