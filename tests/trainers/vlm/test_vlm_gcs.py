"""The VLM trainer on a bucket (gcp-storage-emulator on loopback): image-text records whose images
are relative paths in the bucket, prepared by the pipeline's prepare step into gs://, read back
through /gcs/ paths by DataLoader worker processes; checkpoints and the model written to gs://."""

import json

from tests.support.trainer_runs import TINY_VLM
from trainers.common import checkpoint, storage
from trainers.vlm.__main__ import parser, resolve_config
from trainers.vlm.images import read_image_bytes
from trainers.vlm.prepared import prepare
from trainers.vlm.synthetic import shapes_records
from trainers.vlm.train import train


def _upload_records(root: str, num: int) -> None:
    """Records as a dataset usually is: a JSONL file and an images/ folder beside it."""
    lines = []
    for i, record in enumerate(shapes_records(num, seed=5)):
        with storage.open_uri(f"{root}/data/imgs/{i}.png", "wb") as f:
            f.write(read_image_bytes(record["image"], base_dir="."))
        lines.append(json.dumps({**record, "image": f"imgs/{i}.png"}))
    storage.write_text(f"{root}/data/train.jsonl", "\n".join(lines) + "\n")


def test_prepare_and_train_through_a_bucket(gcs_bucket):
    root = f"gs://{gcs_bucket}"
    _upload_records(root, 120)
    argv = [*TINY_VLM, "--data", f"{root}/data/train.jsonl", "--set", "data.eval_fraction=0.2"]
    stats = prepare(
        resolve_config(parser().parse_args(argv)),
        train_dir=f"{root}/prep/train",
        eval_dir=f"{root}/prep/eval",
    )
    assert stats["train"]["num_records"] + stats["eval"]["num_records"] == 120
    assert stats["train"]["num_images"] == stats["train"]["num_records"]

    args = [
        *TINY_VLM,
        "--data", f"/gcs/{gcs_bucket}/prep/train",
        "--eval-data", f"/gcs/{gcs_bucket}/prep/eval",
        "--output-dir", f"{root}/model",
        "--checkpoint-dir", f"{root}/ckpt",
        "--max-steps", "4",
        "--set", "checkpoint.every_steps=2",
        "--set", "data.num_workers=2",  # worker processes read the images from the bucket
    ]  # fmt: skip
    meta = train(resolve_config(parser().parse_args(args)))

    assert meta["steps"] == 4 and meta["images_seen"] == 4 * 16
    assert meta["dataset"]["skipped_images"] == 0
    # The trainer reads records as written, so its fingerprint is the prepared split's.
    assert meta["dataset"]["fingerprint"] == stats["train"]["fingerprint"]
    assert checkpoint.committed_steps(f"{root}/ckpt") == [2, 4]
    names = set(storage.list_names(f"{root}/model"))
    assert {"model.safetensors", "preprocessor_config.json", "training_metadata.json"} <= names

    from trainers.vlm.model import load_trained

    loaded = load_trained(f"{root}/model", device="cpu")
    assert loaded.num_image_tokens == meta["num_image_tokens"] > 0
