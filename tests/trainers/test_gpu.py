"""The GPU-only paths of the training loop, on the LLM task's tiny debug model: bf16 autocast
over fp32 weights, fused AdamW, MFU and memory metrics, torch.compile, and FlashAttention-2 on
packed rows. Every case skips itself without CUDA (FlashAttention-2 also without flash_attn)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from tests.support.trainer_runs import TINY
from trainers.common import loop, speed
from trainers.common.distributed import Dist
from trainers.common.preemption import StopFlag
from trainers.common.tracking import NullTracker

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
DEVICE = "cuda:0"
SMALL = ["--set", "data.synthetic_examples=300", "--set", "train.log_every=1"]


class Recorder(NullTracker):
    def __init__(self) -> None:
        super().__init__()
        self.logged: list[dict] = []

    def log(self, metrics, *, step):
        self.logged.append(dict(metrics))


def _run(*args: str, tracker=None) -> loop.Run:
    from trainers.llm.__main__ import parser, resolve_config
    from trainers.llm.train import LLMTask

    cfg = resolve_config(parser().parse_args([*TINY, *SMALL, *args]))
    return loop.build_run(cfg, LLMTask, dist=Dist(device=DEVICE), tracker=tracker or Recorder())


@pytest.fixture(scope="module")
def run() -> loop.Run:
    return _run("--max-steps", "3")


def test_bf16_autocast_computes_in_bf16_over_fp32_weights(run):
    seen = []
    layer = run.task.model.model.layers[0].mlp.down_proj
    handle = layer.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    try:
        result = loop.train_step(run)
    finally:
        handle.remove()
    assert run.autocast and seen and set(seen) == {torch.bfloat16}
    assert layer.weight.dtype == torch.float32  # master weights stay fp32
    assert torch.isfinite(torch.tensor(result.loss))


def test_adamw_is_fused_on_cuda(run):
    assert run.optimizer.defaults["fused"] is True
    before = run.task.model.model.layers[0].mlp.down_proj.weight.detach().clone()
    loop.train_step(run)
    assert not torch.equal(before, run.task.model.model.layers[0].mlp.down_proj.weight)


def test_the_loop_logs_mfu_and_peak_memory():
    run = _run("--max-steps", "2")
    loop.run_steps(run, StopFlag())
    logged = [m for m in run.tracker.logged if "train/loss" in m]
    assert len(logged) == 2 and all(0 < m["train/mfu"] < 1 for m in logged)
    assert all(m["train/memory_gb"] > 0 for m in logged)
    assert run.peak_flops is not None and run.peak_flops == speed.device_peak(DEVICE)


def test_torch_compile_trains_like_eager():
    losses = {}
    for compiled in (False, True):
        run = _run("--max-steps", "3", "--set", f"model.compile={compiled}")
        losses[compiled] = [loop.train_step(run).loss for _ in range(3)]
    assert losses[False][-1] < losses[False][0]  # guard: it trained
    torch.testing.assert_close(losses[True], losses[False], rtol=2e-2, atol=0)


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is None, reason="needs flash_attn")
def test_flash_attention_2_on_packed_rows_matches_sdpa():
    from trainers.common.packing import IGNORE

    logits = {}
    for attention in ("sdpa", "flash_attention_2"):
        run = _run("--set", f"model.attn_implementation={attention}", tracker=NullTracker())
        packed, model = run.task.data.train, run.task.model.eval()
        rows = list(range(4))  # several examples per row: no attention across them either way
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(
                input_ids=packed.input_ids[rows].to(DEVICE),
                position_ids=packed.position_ids[rows].to(DEVICE),
            ).logits
        logits[attention] = out.float()[packed.targets[rows].to(DEVICE) != IGNORE]
    assert (run.task.data.train.position_ids[:4] == 0).sum() > 4  # guard: rows hold several
    torch.testing.assert_close(logits["flash_attention_2"], logits["sdpa"], rtol=0, atol=5e-2)
