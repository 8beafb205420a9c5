"""What a finished run leaves behind, whatever the trainer: the model directory (what the task
writes, plus `training_metadata.json`) at `output_dir` (local or gs://), the training records as
the run's dataset artifact and the model directory as its model artifact in W&B.

    save_model(run, metadata)   # rank 0, after the last step
"""

from __future__ import annotations

import json
import os
import tempfile

from trainers.common import storage
from trainers.common.logs import log

METADATA_FILE = "training_metadata.json"


def save_model(run, meta: dict) -> str:
    """Write the model directory to `run.cfg.output_dir` and log the artifacts."""
    out = run.cfg.output_dir
    with tempfile.TemporaryDirectory(prefix="liftoff-model-") as local:
        run.task.write_model_dir(local)
        with open(os.path.join(local, METADATA_FILE), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        storage.upload_dir(local, out)
    log_artifacts(run, out, meta)
    log(f"model written to {out}")
    return out


def log_artifacts(run, out: str, meta: dict) -> None:
    """The training records as the used dataset artifact (by reference when they came from a
    file), the model directory as the logged model artifact."""
    dataset = meta["dataset"]
    with tempfile.TemporaryDirectory(prefix="liftoff-data-") as local:
        uri = run.cfg.data.train or _write_records(run.task.train_records, local)
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
