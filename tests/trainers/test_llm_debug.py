"""The debug preset end to end, `python -m trainers.llm --preset debug` exactly as README.md
writes it, in a directory of its own (the README test runs it only here): it learns (loss
falls, held-out exact match rises), writes an HF model directory (./outputs/model) and metadata,
and its offline W&B run (./wandb) holds the config, metrics against global_step, and the
artifacts."""

import json

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from tests.support.trainer_runs import run_trainer, trainer_env
from tests.support.wandb_records import read_run


@pytest.fixture(scope="module")
def debug_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("debug")
    env = trainer_env(
        WANDB_RUN_GROUP="pipeline-run-7",
        WANDB_BASE_URL="http://127.0.0.1:9",
        OMP_NUM_THREADS="2",
    )
    done = run_trainer(["--preset", "debug"], env=env, cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((tmp / "outputs" / "model" / "training_metadata.json").read_text())
    return tmp, meta, read_run(tmp / "wandb")


def test_loss_falls_and_held_out_accuracy_rises(debug_run):
    _, meta, wandb_run = debug_run
    losses = [row["train/loss"] for row in wandb_run.history if "train/loss" in row]
    assert len(losses) == 25
    assert losses[-1] < 0.5 * losses[0]
    final = meta["final"]
    assert final["eval/initial_exact_match"] <= 0.01
    assert final["eval/exact_match"] >= final["eval/initial_exact_match"] + 0.08
    assert final["eval/perplexity"] < 2.2


def test_model_directory_loads_and_generates(debug_run):
    tmp, meta, _ = debug_run
    model_dir = tmp / "outputs" / "model"
    assert (model_dir / "model.safetensors").stat().st_size > 0
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert model.config.num_hidden_layers == meta["config"]["model"]["num_layers"] == 4
    assert "<|assistant|>" in tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    out = model.generate(**ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def test_metadata_records_the_run(debug_run):
    _, meta, _ = debug_run
    assert meta["steps"] == 500 and meta["world_size"] == 1
    assert meta["config"]["preset"] == "debug"
    assert len(meta["dataset"]["fingerprint"]) == 16
    pack = meta["dataset"]["pack"]
    assert pack["rows"] == meta["dataset"]["train_rows"] > 0
    assert meta["tokens_seen"] == pytest.approx(500 * 8 * pack["tokens"] / pack["rows"], rel=0.2)


def test_wandb_run_holds_config_metrics_and_artifacts(debug_run):
    _, meta, run = debug_run
    assert run.group == "pipeline-run-7" and run.job_type == "train"
    assert run.config["optim"]["lr"] == meta["config"]["optim"]["lr"]
    assert run.config["model"]["num_layers"] == 4
    train_rows = [r for r in run.history if "train/loss" in r]
    assert [r["global_step"] for r in train_rows] == list(range(20, 501, 20))
    assert all(
        {"train/lr", "train/grad_norm", "train/tokens_per_s"} <= r.keys() for r in train_rows
    )
    evals = [r for r in run.history if "eval/loss" in r]
    assert [r["global_step"] for r in evals] == [100, 200, 300, 400, 500]
    assert all(r["eval/perplexity"] > 1 for r in evals)
    assert any(m.get("step_metric") == "global_step" for m in run.metrics)
    model = run.artifact("model-debug")
    assert model.type == "model" and "model.safetensors" in model.entries
    dataset = run.used_artifacts[0]
    assert dataset.type == "dataset" and "train.jsonl" in dataset.entries
    assert dataset.metadata["fingerprint"] == meta["dataset"]["fingerprint"]
