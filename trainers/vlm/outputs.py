"""What a finished VLM run leaves behind: an HF Llava directory (safetensors, tokenizer with its
chat template, `preprocessor_config.json` with the image size and normalisation; with LoRA the
adapters merged in and also kept under `adapter/`), `training_metadata.json`, and the dataset and
model as W&B artifacts.
"""

from __future__ import annotations

import json
import os
import tempfile

from trainers.common import storage
from trainers.common.config import to_dict
from trainers.llm.outputs import METADATA_FILE, log_artifacts
from trainers.vlm.model import PROCESSOR_FILE

# The image processor class whose preprocessing matches trainers.vlm.images.decode.
PROCESSOR_CLASS = "SiglipImageProcessor"


def metadata(run) -> dict:
    return {
        "config": to_dict(run.cfg),
        "steps": run.step,
        "tokens_seen": run.tokens_seen,
        "images_seen": run.images_seen,
        "world_size": run.dist.world_size,
        "num_image_tokens": run.num_image_tokens,
        "parameters": dict(run.parameters),
        "final": dict(run.history),
        "dataset": {
            "fingerprint": run.data.fingerprint,
            "skipped_records": run.data.skipped_records,
            "skipped_images": run.skipped_images,
            "dropped_examples": run.data.dropped_examples,
            "train_examples": len(run.data.train),
            "eval_examples": len(run.data.eval),
        },
    }


def save_model(run, meta: dict) -> str:
    """Write the model directory to `output_dir` (local or gs://) and log the artifacts."""
    out = run.cfg.output_dir
    with tempfile.TemporaryDirectory(prefix="liftoff-model-") as local:
        write_model_dir(run, local, meta)
        storage.upload_dir(local, out)
    log_artifacts(run, out, meta)
    print(f"model written to {out}", flush=True)
    return out


def write_model_dir(run, local: str, meta: dict) -> None:
    model = run.model
    if hasattr(model, "peft_config"):
        model.save_pretrained(os.path.join(local, "adapter"))
        model = model.merge_and_unload()  # the run is over: merging in place is fine
    model.save_pretrained(local)
    run.data.tokenizer.save_pretrained(local)
    processor = {**run.spec.to_dict(), "image_processor_type": PROCESSOR_CLASS}
    with open(os.path.join(local, PROCESSOR_FILE), "w") as f:
        json.dump(processor, f, indent=2, sort_keys=True)
    with open(os.path.join(local, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
