"""gs:// input and output end to end against gcp-storage-emulator on loopback: records read from
a bucket, checkpoints committed to it, the model directory written to it, and /gcs/ paths."""

import json

import fsspec

from tests.support.trainer_runs import TINY
from trainers.common import checkpoint, storage
from trainers.llm.__main__ import parser, resolve_config
from trainers.llm.train import train


def _records(n: int) -> str:
    return "".join(
        json.dumps({"prompt": f"What is {i} + 1?", "response": str(i + 1)}) + "\n" for i in range(n)
    )


def test_training_reads_and_writes_gcs(gcs_bucket, tmp_path):
    root = f"gs://{gcs_bucket}"
    storage.write_text(f"{root}/data/train.jsonl", _records(300))
    args = parser().parse_args(
        [
            *TINY,
            "--data",
            f"/gcs/{gcs_bucket}/data/train.jsonl",
            "--output-dir",
            f"{root}/model",
            "--checkpoint-dir",
            f"{root}/ckpt",
            "--max-steps",
            "4",
            "--set",
            "checkpoint.every_steps=2",
            "--set",
            "data.eval_fraction=0.1",
        ]
    )
    meta = train(resolve_config(args))

    assert meta["steps"] == 4 and meta["dataset"]["skipped_records"] == 0
    assert checkpoint.committed_steps(f"{root}/ckpt") == [2, 4]
    names = storage.list_names(f"{root}/model")
    assert {"model.safetensors", "config.json", "tokenizer.json", "training_metadata.json"} <= set(
        names
    )
    saved = json.loads(storage.read_text(f"{root}/model/training_metadata.json"))
    assert saved["dataset"]["fingerprint"] == meta["dataset"]["fingerprint"]
    with fsspec.open(f"{root}/model/model.safetensors", "rb") as f:
        assert len(f.read()) > 10_000

    # The model directory round-trips into transformers from the bucket.
    from transformers import AutoModelForCausalLM

    from trainers.lm.model import local_source

    model = AutoModelForCausalLM.from_pretrained(local_source(f"{root}/model"))
    assert model.config.hidden_size == meta["config"]["model"]["hidden_size"]
