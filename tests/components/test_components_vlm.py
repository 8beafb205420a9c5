"""The components with trainer="vlm" under kfp.local, chained as vlm-ddp chains them:
prepare_data → train (DDP over 2 gloo processes, as the local target runs it) → evaluate → gate,
with what each step's artifacts and W&B runs must hold. Register and deploy do not depend on
the trainer (test_components.py)."""

import json
import os
from typing import NamedTuple

import pytest
from kfp import dsl
from kfp.dsl import Dataset, Metrics, Model

from components.evaluate.component import evaluate
from components.gate.component import gate
from components.prepare_data.component import prepare_data
from components.train.component import train
from tests.support.kfp_local import kfp_local  # noqa: F401
from tests.support.wandb_records import find_run_files, read_run
from trainers.common import prepared

pytestmark = pytest.mark.slow
# Small enough for seconds per step on 2 cores; the same overrides reach prepare_data and train.
TINY = [
    "data.synthetic_examples=240",
    "data.num_workers=0",
    "train.global_batch_size=8",
    "train.micro_batch_size=4",
    "train.eval_every=0",
    "train.exact_match_examples=0",
    "train.log_every=2",
    "train.threads=1",
]
MAX_STEPS = 4


class ChainOutputs(NamedTuple):
    train_data: Dataset
    eval_data: Dataset
    model: Model
    train_metrics: Metrics
    eval_metrics: Metrics
    gate: float
    passed: bool


def chain(wandb_dir: str):
    tracking = {"wandb_dir": wandb_dir, "run_group": "vlm-group-under-test"}

    @dsl.pipeline(name="vlm-chain")
    def pipeline() -> ChainOutputs:
        prep = prepare_data(preset="debug", trainer="vlm", overrides=TINY, **tracking)
        trained = train(
            train_data=prep.outputs["train_data"],
            eval_data=prep.outputs["eval_data"],
            preset="debug",
            trainer="vlm",
            overrides=[*TINY, "checkpoint.every_steps=2"],
            max_steps=MAX_STEPS,
            nproc_per_node=2,
            **tracking,
        )
        scored = evaluate(
            model=trained.outputs["model"],
            eval_data=prep.outputs["eval_data"],
            trainer="vlm",
            gate_metric="vqa_exact_match",
            max_examples=6,
            max_new_tokens=4,
            **tracking,
        )
        verdict = gate(value=scored.outputs["gate"], threshold=0.0, metric="vqa_exact_match")
        return ChainOutputs(
            prep.outputs["train_data"],
            prep.outputs["eval_data"],
            trained.outputs["model"],
            trained.outputs["metrics"],
            scored.outputs["metrics"],
            scored.outputs["gate"],
            verdict.output,
        )

    return pipeline


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("wandb"))


@pytest.fixture(scope="module")
def out(kfp_local, wandb_dir):  # noqa: F811
    return chain(wandb_dir)().outputs


@pytest.fixture(scope="module")
def runs(out, wandb_dir):
    return [read_run(path) for path in find_run_files(wandb_dir)]


def _one(runs, job_type: str):
    (run,) = [r for r in runs if r.job_type == job_type]
    return run


def _records(dataset: Dataset) -> list[dict]:
    return prepared.read_records(dataset.path)


def test_prepare_data_writes_image_text_splits(out):
    train_meta, eval_meta = out["train_data"].metadata, out["eval_data"].metadata
    for meta, dataset in ((train_meta, out["train_data"]), (eval_meta, out["eval_data"])):
        assert meta["records"] == meta["vqa_records"] + meta["caption_records"] > 0
        assert meta["images_bytes"] > 0
        records = _records(dataset)
        assert len(records) == meta["records"]
        assert all(os.path.isfile(os.path.join(dataset.path, r["image"])) for r in records[:5])
    assert train_meta["records"] + eval_meta["records"] == 240
    assert train_meta["fingerprint"] != eval_meta["fingerprint"]


def test_prepared_stats_are_logged_to_wandb(out, runs):
    prep = _one(runs, "prepare_data")
    assert prep.history[0]["data/train_records"] == out["train_data"].metadata["records"]
    assert prep.history[0]["data/eval_vqa_records"] == out["eval_data"].metadata["vqa_records"]
    assert sorted(a.type for a in prep.artifacts) == ["dataset", "dataset"]


def test_train_runs_ddp_and_counts_images(out):
    model = out["model"]
    assert os.path.isfile(os.path.join(model.path, "config.json"))
    assert os.path.isfile(os.path.join(model.path, "preprocessor_config.json"))
    assert model.metadata["steps"] == MAX_STEPS
    with open(os.path.join(model.path, "training_metadata.json")) as f:
        assert json.load(f)["world_size"] == 2  # two gloo processes, as the local target runs
    metrics = out["train_metrics"].metadata
    assert metrics["steps"] == MAX_STEPS
    assert metrics["images_seen"] == MAX_STEPS * 8  # the global batch, one image per example


def test_evaluate_gates_on_vqa_exact_match_and_logs_pictures(out, runs):
    metrics = out["eval_metrics"].metadata
    assert 0.0 <= metrics["vqa_exact_match"] <= 1.0
    assert out["gate"] == pytest.approx(metrics["vqa_exact_match"])
    assert out["passed"] is True  # threshold 0
    evals = _one(runs, "evaluate")
    assert evals.history[0]["eval/vqa_exact_match"] == pytest.approx(metrics["vqa_exact_match"])
    (table,) = [a for a in evals.artifacts if a.type == "run_table"]
    assert any(path.endswith(".png") for path in table.entries)  # the samples' images


def test_every_step_logs_to_the_run_group(runs):
    # One train run: rank 0 alone logs.
    assert sorted(r.job_type for r in runs) == ["evaluate", "prepare_data", "train"]
    assert {r.group for r in runs} == {"vlm-group-under-test"}
