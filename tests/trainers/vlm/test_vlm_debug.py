"""The debug preset end to end, `python -m trainers.vlm --preset debug` exactly as README.md
writes it, in a directory of its own (the README test runs it only here): the tiny VLM learns to
answer questions about the images well above what the questions alone allow, and its offline
W&B run (./wandb) holds the config and the throughput metrics."""

import json

from tests.support.wandb_records import read_run


def test_debug_preset_learns_to_see(vlm_debug_run):
    meta = json.loads((vlm_debug_run / "outputs" / "model" / "training_metadata.json").read_text())
    assert meta["steps"] == 300 and meta["config"]["preset"] == "debug"

    # Answering each question with its most common training answer scores "chance"; only a
    # model that reads the image clears it by a wide margin.
    final = meta["final"]
    assert 0.1 < final["eval/chance_exact_match"] < 0.6
    assert final["eval/vqa_exact_match"] > final["eval/chance_exact_match"] + 0.2

    run = read_run(vlm_debug_run / "wandb")
    assert run.job_type == "train" and run.config["preset"] == "debug"
    assert run.config["train"]["max_steps"] == 300
    train_rows = [r for r in run.history if "train/loss" in r]
    assert [r["global_step"] for r in train_rows] == list(range(20, 301, 20))
    assert all(r["train/images_per_s"] > 0 and r["train/tokens_per_s"] > 0 for r in train_rows)
    # 16 images a step, each with its 64 image tokens and some text.
    assert train_rows[-1]["train/images_seen"] == meta["images_seen"] == 300 * 16
    assert meta["tokens_seen"] > 300 * 16 * 64
    assert train_rows[-1]["train/loss"] < 0.5 * train_rows[0]["train/loss"]
    evals = [r for r in run.history if "eval/vqa_exact_match" in r]
    assert [r["eval/vqa_exact_match"] for r in evals] == [final["eval/vqa_exact_match"]]
