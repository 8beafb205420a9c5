"""DDP under torchrun (gloo, 2 CPU processes) trains the VLM exactly as 1 process does with the
same global batch: without accumulation (static_graph) and with it (no_sync micro-steps, here
with a trained vision tower whose unreachable layers must stay out of DDP). Rank 0 alone logs
to W&B."""

import json
import re

import pytest
import torch

from tests.support.trainer_runs import TINY_VLM, ddp_env, load_weights, run_trainer
from tests.support.wandb_records import find_run_files, read_run
from trainers.common.distributed import Dist
from trainers.vlm.__main__ import parser, resolve_config
from trainers.vlm.train import train, use_static_graph

STEPS = 4
COMMON = [
    "--max-steps",
    str(STEPS),
    "--set",
    "train.global_batch_size=8",
    "--set",
    "checkpoint.every_steps=0",
]
# (a) 1 process: one micro-batch of 8; 2 processes: one micro-batch of 4 each (static_graph).
NO_ACCUMULATION = ([], ["--set", "train.micro_batch_size=4"])
# (b) 2 processes: two no_sync micro-batches of 2 each; vision trained up to layer -2.
ACCUMULATION = (
    ["--set", "freeze.vision=false", "--set", "vision.feature_layer=-2"],
    ["--set", "train.micro_batch_size=2"],
)
LAST_VISION_LAYER = "vision_tower.encoder.layers.1."


def _args(out, extra):
    return [
        *TINY_VLM,
        *COMMON,
        *extra,
        "--output-dir",
        str(out / "model"),
        "--checkpoint-dir",
        str(out / "ckpt"),
    ]


def _single(out, extra) -> tuple[dict, dict]:
    """The 1-process run, in this process (it is only a reference)."""
    args = _args(out, [*extra, "--set", "train.micro_batch_size=8"])
    meta = train(resolve_config(parser().parse_args(args)))
    return load_weights(out / "model"), meta


def _ddp(out, extra, **env) -> tuple[dict, dict, list[float]]:
    done = run_trainer(_args(out, extra), env=ddp_env(**env), module="trainers.vlm")
    assert done.returncode == 0, done.stderr[-3000:]
    meta = json.loads((out / "model" / "training_metadata.json").read_text())
    losses = [float(x) for x in re.findall(r"step \d+/\d+ loss ([\d.]+)", done.stdout)]
    return load_weights(out / "model"), meta, losses


def _assert_same_training(single, single_meta, ddp, ddp_meta, losses):
    assert single_meta["world_size"] == 1 and ddp_meta["world_size"] == 2
    assert ddp_meta["steps"] == STEPS
    assert single_meta["images_seen"] == ddp_meta["images_seen"] == 8 * STEPS
    assert single_meta["tokens_seen"] == ddp_meta["tokens_seen"] > 0
    # Guard: training moved the weights, so equality is not that of two idle runs. Rank 0
    # alone prints, so there is one loss line per step.
    assert len(losses) == STEPS and losses[-1] < losses[0] - 0.05
    assert single.keys() == ddp.keys() and single
    # Summation order differs (ranks, micro-steps), and AdamW's g/sqrt(v) magnifies that on
    # near-zero gradients: 1 process with and without accumulation differ by ~1.5e-5, while a
    # lost or doubled all-reduce moves weights by ~lr = 2e-3 a step.
    for name, value in single.items():
        torch.testing.assert_close(ddp[name], value, rtol=1e-3, atol=1e-4, msg=name)
    single_loss, ddp_loss = single_meta["final"]["train/loss"], ddp_meta["final"]["train/loss"]
    assert ddp_loss == pytest.approx(single_loss, rel=1e-5)


@pytest.fixture(scope="module")
def no_accumulation(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp-a")
    single_extra, ddp_extra = NO_ACCUMULATION
    single = _single(tmp / "single", single_extra)
    (tmp / "wandb").mkdir()
    ddp = _ddp(
        tmp / "ddp",
        [*single_extra, *ddp_extra, "--set", "wandb.enabled=true"],
        WANDB_DIR=str(tmp / "wandb"),
        WANDB_BASE_URL="http://127.0.0.1:9",
    )
    return tmp, single, ddp


def test_two_processes_without_accumulation_match_one(no_accumulation):
    _, (single, single_meta), (ddp, ddp_meta, losses) = no_accumulation
    cfg = resolve_config(parser().parse_args([*TINY_VLM, *COMMON, *NO_ACCUMULATION[1]]))
    assert use_static_graph(cfg, Dist(world_size=2))  # this case runs DDP with static_graph
    _assert_same_training(single, single_meta, ddp, ddp_meta, losses)


def test_rank_zero_alone_logs_to_wandb(no_accumulation):
    tmp, _, (_, ddp_meta, _) = no_accumulation
    files = find_run_files(tmp / "wandb")
    assert len(files) == 1, files
    run = read_run(files[0])
    steps = [row["global_step"] for row in run.history if "train/loss" in row]
    assert steps == list(range(1, STEPS + 1))
    assert run.config["train"]["micro_batch_size"] == 4
    last = [row for row in run.history if "train/images_seen" in row][-1]
    assert last["train/images_seen"] == ddp_meta["images_seen"]
    assert last["train/images_per_s"] > 0 and last["train/tokens_per_s"] > 0


def test_two_processes_with_no_sync_accumulation_and_a_trained_tower_match_one(
    tmp_path, no_accumulation
):
    single_extra, ddp_extra = ACCUMULATION
    cfg = resolve_config(parser().parse_args([*TINY_VLM, *COMMON, *single_extra, *ddp_extra]))
    assert not use_static_graph(cfg, Dist(world_size=2))  # no_sync, no static_graph
    single, single_meta = _single(tmp_path / "single", single_extra)
    # No find_unused_parameters anywhere: a trained weight without a gradient would stop the
    # second step ("Expected to have finished reduction in the prior iteration").
    ddp, ddp_meta, losses = _ddp(tmp_path / "ddp", [*single_extra, *ddp_extra])
    _assert_same_training(single, single_meta, ddp, ddp_meta, losses)

    # The tower trained below feature layer -2, and only there: against the run of the same
    # seed with the tower frozen, layer 0 moved while layer 1 and the post-norm did not.
    _, (frozen, _), _ = no_accumulation
    moved = [n for n in ddp if n.startswith("vision_tower.encoder.layers.0.")]
    kept = [n for n in ddp if n.startswith(LAST_VISION_LAYER) or "post_layernorm" in n]
    assert moved and kept
    assert all(not torch.equal(ddp[n], frozen[n]) for n in moved if n.endswith("weight"))
    assert all(torch.equal(ddp[n], frozen[n]) for n in kept)
    assert ddp_meta["parameters"]["vision"] > 0


def test_an_unreadable_image_on_one_rank_stops_every_rank_with_one_line(tmp_path):
    from trainers.vlm.synthetic import shapes_records

    records = shapes_records(48, seed=1)
    records[10]["image"] = {"b64": "bm90IGFuIGltYWdl"}  # "not an image"
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    extra = ["--data", str(data), "--set", "data.eval_fraction=0.2", *NO_ACCUMULATION[1]]
    args = _args(tmp_path, extra)
    done = run_trainer(args, env=ddp_env(), module="trainers.vlm")

    assert done.returncode != 0
    assert f"error: {data}:11: image bytes are not a decodable image" in done.stderr
    assert "error: stopped: another rank read an unreadable image" in done.stderr
    # Both ranks left through the same step's check: neither died waiting on the other.
    assert "Connection closed by peer" not in done.stderr
