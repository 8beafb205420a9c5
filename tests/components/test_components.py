"""Each component under kfp.local, chained as the pipeline chains them: prepare_data → train →
evaluate → gate → register → deploy, with what each step's artifacts and W&B runs must hold."""

import json
import os
from typing import NamedTuple

import pytest
from kfp import dsl
from kfp.dsl import Dataset, Metrics, Model

from components.deploy.component import deploy_local
from components.evaluate.component import evaluate
from components.gate.component import gate
from components.prepare_data.component import prepare_data
from components.register.component import register_local
from components.train.component import train
from serving.registry import LocalRegistry
from tests.support.kfp_local import TINY_OVERRIDES, kfp_local  # noqa: F401
from tests.support.wandb_records import find_run_files, read_run
from trainers.common import prepared

pytestmark = pytest.mark.slow
PROMPTS = ["What is 2 + 2?", "What is 3 + 5?", "What is 9 - 4?"]
GOOD = [{"prompt": f"What is {i} + 1?", "response": str(i + 1)} for i in range(60)]


def _records(path, records, extra_lines=()):
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
        f.writelines(line + "\n" for line in extra_lines)
    return str(path)


def _split_records(dataset) -> list[dict]:
    return prepared.read_records(dataset.path)


@pytest.fixture(scope="module")
def wandb_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("wandb"))


class ChainOutputs(NamedTuple):
    train_data: Dataset
    eval_data: Dataset
    model: Model
    train_metrics: Metrics
    eval_metrics: Metrics
    gate: float
    model_uri: str
    first: str
    second: str
    deployed: int


def chain(registry_dir: str, wandb_dir: str):
    """The components wired as the pipeline wires them (kfp.local passes artifacts between
    tasks only inside a pipeline); every output is a pipeline output to inspect."""
    tracking = {"wandb_dir": wandb_dir, "run_group": "group-under-test"}

    @dsl.pipeline(name="chain")
    def pipeline() -> ChainOutputs:
        prep = prepare_data(preset="debug", overrides=TINY_OVERRIDES, **tracking)
        trained = train(
            train_data=prep.outputs["train_data"],
            eval_data=prep.outputs["eval_data"],
            preset="debug",
            overrides=[*TINY_OVERRIDES, "checkpoint.every_steps=3"],
            max_steps=6,
            **tracking,
        )
        scored = evaluate(
            model=trained.outputs["model"],
            eval_data=prep.outputs["eval_data"],
            max_examples=8,
            max_new_tokens=4,
            **tracking,
        )
        register = {
            "model": trained.outputs["model"],
            "eval_metrics": scored.outputs["metrics"],
            "model_name": "tiny",
            "registry_dir": registry_dir,
            "aliases": ["candidate"],
            "labels": {"git_sha": "abc123"},
            "pipeline_run": "run-1",
        }
        first = register_local(**register)
        second = register_local(**register).after(first)
        deployed = deploy_local(
            model_ref=second.output, registry_dir=registry_dir, instances=PROMPTS
        )
        return ChainOutputs(
            prep.outputs["train_data"],
            prep.outputs["eval_data"],
            trained.outputs["model"],
            trained.outputs["metrics"],
            scored.outputs["metrics"],
            scored.outputs["gate"],
            scored.outputs["model_uri"],
            first.output,
            second.output,
            deployed.output,
        )

    return pipeline


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    return str(tmp_path_factory.mktemp("registry")), str(tmp_path_factory.mktemp("wandb"))


@pytest.fixture(scope="module")
def out(kfp_local, dirs):  # noqa: F811
    return chain(*dirs)().outputs


@pytest.fixture(scope="module")
def runs(out, dirs):
    return [read_run(p) for p in find_run_files(dirs[1])]


def test_prepare_data_validates_dedupes_and_splits(kfp_local, tmp_path):  # noqa: F811
    dupes = [GOOD[0], GOOD[1]]
    path = _records(tmp_path / "raw.jsonl", GOOD + dupes, extra_lines=['{"prompt": 1}'])
    task = prepare_data(
        preset="debug",
        data=path,
        overrides=[*TINY_OVERRIDES, "data.eval_fraction=0.2", "wandb.enabled=false"],
        on_bad_record="skip",
    )
    train_meta = task.outputs["train_data"].metadata
    eval_meta = task.outputs["eval_data"].metadata
    assert train_meta["skipped_records"] == 1
    assert train_meta["duplicates_removed"] == 2
    assert train_meta["records"] + eval_meta["records"] == len(GOOD)
    assert eval_meta["records"] > 0 and train_meta["tokens"] > 0 and eval_meta["rows"] > 0
    train_set = {json.dumps(r, sort_keys=True) for r in _split_records(task.outputs["train_data"])}
    eval_set = {json.dumps(r, sort_keys=True) for r in _split_records(task.outputs["eval_data"])}
    assert not train_set & eval_set
    assert len(train_set) == train_meta["records"]  # duplicates really are gone
    assert train_meta["fingerprint"] != eval_meta["fingerprint"]


def test_prepare_data_stops_on_a_bad_record_by_default(kfp_local, tmp_path, capfd):  # noqa: F811
    path = _records(tmp_path / "raw.jsonl", GOOD[:5], extra_lines=["{not json"])
    with pytest.raises(RuntimeError, match="prepare-data"):
        prepare_data(preset="debug", data=path, overrides=["wandb.enabled=false"])
    assert f"{path}:6: " in capfd.readouterr().out  # the file and line of the bad record


def test_prepared_stats_are_logged_to_wandb(out, runs):
    prep = [r for r in runs if r.job_type == "prepare_data"]
    assert len(prep) == 1 and prep[0].group == "group-under-test"
    assert prep[0].history[0]["data/train_records"] == out["train_data"].metadata["records"]
    assert sorted(a.type for a in prep[0].artifacts) == ["dataset", "dataset"]


def test_train_writes_a_model_and_metrics(out):
    model = out["model"]
    assert os.path.isfile(os.path.join(model.path, "config.json"))
    assert os.path.isfile(os.path.join(model.path, "tokenizer.json"))
    assert model.metadata["steps"] == 6
    metrics = out["train_metrics"].metadata
    assert metrics["steps"] == 6 and metrics["eval_loss"] > 0
    checkpoints = os.path.join(os.path.dirname(model.path), "checkpoints")
    assert os.listdir(checkpoints)  # beside the model, where a restarted job finds them


def test_evaluate_reports_metrics_and_the_gate(out, runs):
    metrics = out["eval_metrics"].metadata
    assert 0.0 <= metrics["exact_match"] <= 1.0
    assert metrics["perplexity"] > 1.0 and metrics["eval_examples"] == 8
    assert out["gate"] == pytest.approx(metrics["exact_match"])
    assert out["model_uri"] == out["model"].uri
    evals = [r for r in runs if r.job_type == "evaluate"]
    assert len(evals) == 1 and evals[0].group == "group-under-test"
    assert evals[0].history[0]["eval/exact_match"] == pytest.approx(metrics["exact_match"])
    tables = [row["eval/samples"] for row in evals[0].history if "eval/samples" in row]
    assert len(tables) == 1 and tables[0]["_type"] == "table-file"  # sample generations
    assert sorted(r.job_type for r in runs) == ["evaluate", "prepare_data", "train"]
    assert {r.group for r in runs} == {"group-under-test"}


@pytest.mark.parametrize("value, passed", [(0.5, True), (0.3, True), (0.29, False)])
def test_gate(kfp_local, value, passed):  # noqa: F811
    assert gate(value=value, threshold=0.3).output is passed


def test_register_keeps_versions_aliases_and_lineage(out, dirs):
    registry = LocalRegistry(dirs[0])
    assert (out["first"], out["second"]) == ("tiny@1", "tiny@2")
    v2 = registry.resolve("tiny@latest")
    assert v2.version == 2 and v2.aliases == ["candidate", "latest"]
    assert v2.labels == {"git_sha": "abc123", "pipeline_run": "run-1"}
    assert v2.lineage["model_artifact"] == out["model"].uri
    wandb_run = v2.lineage["wandb_run"]  # the train step's run, as its metadata recorded it
    assert wandb_run["group"] == "group-under-test" and os.path.isdir(wandb_run["directory"])
    assert v2.metrics["exact_match"] == out["eval_metrics"].metadata["exact_match"]
    assert registry.resolve("tiny@1").aliases == []
    assert os.path.isfile(os.path.join(v2.model_dir, "config.json"))


def test_deploy_serves_the_registered_version(out, dirs):
    assert out["deployed"] == len(PROMPTS)
    record = LocalRegistry(dirs[0]).resolve("tiny@2").deployments[-1]
    assert record["healthy"] is True and record["instances"] == PROMPTS
    assert len(record["predictions"]) == 3
    assert all(isinstance(p, str) for p in record["predictions"])
    assert LocalRegistry(dirs[0]).resolve("tiny@1").deployments == []
