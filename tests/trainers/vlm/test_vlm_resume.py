"""Exact resume of the VLM trainer: a run stopped by SIGTERM (checkpoint, exit 143) or killed
by SIGKILL, then resumed, ends bitwise identical to an uninterrupted run (CPU), also when
DataLoader workers read the images and the resume lands mid-epoch before an epoch boundary.
Checkpoints carry the trained weights only."""

import json

import pytest
import torch

from tests.support.trainer_runs import TINY_VLM, load_weights, run_trainer
from trainers.common import checkpoint
from trainers.common.preemption import PREEMPTED_EXIT_CODE
from trainers.vlm.__main__ import main, parser, resolve_config
from trainers.vlm.data import make_tokenizer
from trainers.vlm.model import build_model
from trainers.vlm.synthetic import shapes_records

# 52 training examples (8 held out) in global batches of 8: 6 steps an epoch, so 10 steps
# cross into a second epoch, and the resumes at steps 4 and 5 land mid-epoch.
STEPS = [
    "--max-steps",
    "10",
    "--seed",
    "3",
    "--set",
    "data.synthetic_examples=60",
    "--set",
    "data.eval_fraction=0.2",
    "--set",
    "train.global_batch_size=8",
    "--set",
    "train.micro_batch_size=4",
    "--set",
    "checkpoint.every_steps=4",
]
WORKERS = ["--set", "data.num_workers=2"]


def _args(tmp, name, *extra):
    return [
        *TINY_VLM,
        *STEPS,
        *extra,
        "--output-dir",
        str(tmp / name / "model"),
        "--checkpoint-dir",
        str(tmp / name / "ckpt"),
    ]


def _run(args, **kw):
    return run_trainer(args, module="trainers.vlm", **kw)


def _main(args) -> int:
    """The trainer's entry point in this process: resumes and references need no signal, and
    skip the ~4 s of imports a child process pays (the kills are real child processes)."""
    return main(args)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reference")
    assert _main(_args(tmp, "ref")) == 0
    meta = json.loads((tmp / "ref" / "model" / "training_metadata.json").read_text())
    assert meta["dataset"]["train_examples"] // 8 == 6  # the epoch length the cases assume
    return tmp / "ref"


def _assert_bitwise_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and len(a) > 0
    for name in a:
        assert torch.equal(a[name], b[name]), f"{name} differs after resume"


def test_sigterm_with_workers_saves_exits_nonzero_and_resumes_exactly(tmp_path, reference, capsys):
    args = _args(tmp_path, "term", *WORKERS)
    stopped = _run(args, kill_at=(5, "SIGTERM"))
    assert stopped.returncode == PREEMPTED_EXIT_CODE, stopped.stderr[-2000:]
    assert "stopped by SIGTERM after step 5" in stopped.stderr
    assert checkpoint.committed_steps(str(tmp_path / "term" / "ckpt")) == [4, 5]
    assert not (tmp_path / "term" / "model").exists()

    assert _main(args) == 0
    out = capsys.readouterr().out
    assert "at step 5" in out and "step 6/10" in out
    assert "step 5/10" not in out  # no step is trained twice
    _assert_bitwise_equal(
        load_weights(reference / "model"), load_weights(tmp_path / "term" / "model")
    )


def test_sigkill_resumes_from_the_last_committed_checkpoint_exactly(tmp_path, reference, capsys):
    args = _args(tmp_path, "kill")
    killed = _run(args, kill_at=(7, "SIGKILL"))
    assert killed.returncode == -9
    assert checkpoint.committed_steps(str(tmp_path / "kill" / "ckpt")) == [4]

    assert _main(args) == 0
    assert "at step 4" in capsys.readouterr().out
    _assert_bitwise_equal(
        load_weights(reference / "model"), load_weights(tmp_path / "kill" / "model")
    )


def test_another_seed_ends_elsewhere(tmp_path, reference):
    """Guard: a run with another seed is not bitwise equal, so the checks above can fail."""
    assert _main([*_args(tmp_path, "other"), "--seed", "4"]) == 0
    ref, other = load_weights(reference / "model"), load_weights(tmp_path / "other" / "model")
    assert any(not torch.equal(ref[k], other[k]) for k in ref)


def test_a_checkpoint_holds_the_trained_weights_only(reference):
    shared, _ = checkpoint.load(checkpoint.step_dir(str(reference / "ckpt"), 8), rank=0)
    cfg = resolve_config(parser().parse_args(_args(reference.parent, "ref")))
    model, _ = build_model(cfg, tokenizer=make_tokenizer(cfg, shapes_records(8, seed=0)))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert set(shared["model"]) == trainable
    assert frozen and all(".vision_tower." in n for n in frozen)  # the default: tower frozen
    assert {n.split(".")[1] for n in trainable} == {"multi_modal_projector", "language_model"}
    assert shared["step"] == 8 and shared["images_seen"] == 64


class _Crash(Exception):
    pass


def _crash_at(step):
    def callback(done: int) -> None:
        if done == step:
            raise _Crash(f"crashed after step {done}")

    return callback


def test_a_lora_run_checkpoints_adapters_and_projector_and_resumes_exactly(tmp_path):
    lora = ["--lora", "--set", "lora.r=4", "--set", "checkpoint.every_steps=2"]
    short = ["--max-steps", "5"]
    # LoRA dropout draws from the global RNG every step, so the resumed RNG stream must match.
    assert resolve_config(parser().parse_args(_args(tmp_path, "x", *lora))).lora.dropout > 0
    assert _main([*_args(tmp_path, "ref", *lora), *short]) == 0
    args = [*_args(tmp_path, "crash", *lora), *short]
    with pytest.raises(_Crash):  # as good as SIGKILL: nothing saved after step 4
        main(args, callbacks=[_crash_at(5)])
    shared, _ = checkpoint.load(checkpoint.step_dir(str(tmp_path / "crash" / "ckpt"), 4), rank=0)
    names = set(shared["model"])
    assert any("lora_" in n for n in names)
    assert all("lora_" in n or ".multi_modal_projector." in n for n in names)

    assert _main(args) == 0
    _assert_bitwise_equal(
        load_weights(tmp_path / "ref" / "model"), load_weights(tmp_path / "crash" / "model")
    )
    # The merged model is what is saved; the adapters are kept beside it.
    assert (tmp_path / "crash" / "model" / "adapter" / "adapter_config.json").exists()
    assert not any("lora_" in n for n in load_weights(tmp_path / "crash" / "model"))
