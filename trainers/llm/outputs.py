"""What a finished LLM run leaves behind: the HF model directory (safetensors + tokenizer; LoRA:
the adapter, and `merged/` full weights when `lora.merge`), `training_metadata.json`, and the
dataset and model as W&B artifacts.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile

from trainers.common import storage
from trainers.common.config import to_dict

METADATA_FILE = "training_metadata.json"


def metadata(run) -> dict:
    stats = run.data.train.stats
    return {
        "config": to_dict(run.cfg),
        "steps": run.step,
        "tokens_seen": run.tokens_seen,
        "world_size": run.dist.world_size,
        "final": dict(run.history),
        "dataset": {
            "fingerprint": run.data.fingerprint,
            "skipped_records": run.data.skipped_records,
            "train_rows": len(run.data.train.input_ids),
            "eval_rows": len(run.data.eval.input_ids),
            "pack": dataclasses.asdict(stats),
        },
    }


def save_model(run, meta: dict) -> str:
    """Write the model directory to `output_dir` (local or gs://) and log the artifacts."""
    out = run.cfg.output_dir
    with tempfile.TemporaryDirectory(prefix="liftoff-model-") as local:
        _write_model_dir(run, local, meta)
        storage.upload_dir(local, out)
    log_artifacts(run, out, meta)
    print(f"model written to {out}", flush=True)
    return out


def _write_model_dir(run, local: str, meta: dict) -> None:
    run.model.save_pretrained(local)
    run.data.tokenizer.save_pretrained(local)
    if run.cfg.lora.enabled and run.cfg.lora.merge:
        merged_dir = os.path.join(local, "merged")
        run.model.merge_and_unload().save_pretrained(merged_dir)
        run.data.tokenizer.save_pretrained(merged_dir)
    with open(os.path.join(local, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)


def log_artifacts(run, out: str, meta: dict) -> None:
    """The training records as the used dataset artifact, the model directory as the logged
    model artifact (any trainer's run: cfg.data.train, data.train_records, tracker)."""
    dataset = meta["dataset"]
    with tempfile.TemporaryDirectory(prefix="liftoff-data-") as local:
        uri = run.cfg.data.train or _write_records(run.data.train_records, local)
        run.tracker.use_artifact(
            name=f"dataset-{dataset['fingerprint']}", type="dataset", uri=uri, metadata=dataset
        )
    run.tracker.log_artifact(
        name=f"model-{run.cfg.preset.replace('/', '-')}",
        type="model",
        uri=out,
        metadata={"steps": meta["steps"], **meta["final"]},
        aliases=["latest"],
    )


def _write_records(records: list[dict], directory: str) -> str:
    """Generated (synthetic) records as a JSONL file, so the dataset artifact holds them."""
    path = os.path.join(directory, "train.jsonl")
    with open(path, "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    return path
