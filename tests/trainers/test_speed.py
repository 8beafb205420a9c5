"""The arithmetic behind `train/mfu`: model FLOPs per token, the FLOPs each trainer's task counts
for a step (the VLM's frozen tower forward-only), device peaks and MFU, and perplexity."""

from __future__ import annotations

import math

import pytest

from tests.support.trainer_runs import TINY_VLM
from trainers.common import speed
from trainers.common.distributed import Dist


def test_flops_per_token_follows_the_palm_appendix():
    # 6 FLOPs per trained weight (forward 2, backward 4), 4 per frozen one (no weight
    # gradient), and 12 * layers * hidden * seq_len for the attention scores and values.
    flops = speed.flops_per_token(
        num_params=1000, num_trainable=100, num_layers=2, hidden_size=8, seq_len=16
    )
    assert flops == 6 * 100 + 4 * 900 + 12 * 2 * 8 * 16
    full = speed.flops_per_token(
        num_params=1000, num_trainable=1000, num_layers=2, hidden_size=8, seq_len=16
    )
    assert full - flops == 2 * 900  # freezing saves the weight-gradient third


def test_mfu_is_model_flops_per_second_over_the_devices_peak():
    assert speed.mfu(4e12, seconds=2.0, peak=1e12, num_devices=4) == pytest.approx(0.5)
    assert speed.mfu(4e12, seconds=2.0, peak=None, num_devices=4) is None


@pytest.mark.parametrize(
    ("name", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", 989e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA A100-SXM4-40GB", 312e12),
        ("NVIDIA L4", 121e12),
        ("NVIDIA GeForce RTX 3090", None),
    ],
)
def test_device_peaks_come_from_the_device_name(name, peak):
    assert speed.peak_flops(name) == peak


def test_no_peak_and_no_memory_off_cuda():
    assert speed.device_peak("cpu") is None
    assert speed.peak_memory_gb("cpu") is None


def test_perplexity_is_exp_loss_and_caps_a_diverged_loss():
    assert speed.perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert speed.perplexity(1e6) == math.exp(50.0)


def test_the_llm_task_counts_its_flops_per_token(tiny_llm_task):
    task = tiny_llm_task
    model = task.model.config
    num_params = sum(p.numel() for p in task.model.parameters())
    per_token = 6 * num_params + 12 * model.num_hidden_layers * model.hidden_size * 128
    assert task.flops({"tokens": 1000, "targets": 10}) == pytest.approx(1000 * per_token)


@pytest.mark.parametrize("freeze_vision", [True, False])
def test_the_vlm_task_counts_a_frozen_tower_forward_only(tmp_path, freeze_vision):
    from trainers.vlm.__main__ import parser, resolve_config
    from trainers.vlm.train import VLMTask

    args = ["--set", "data.synthetic_examples=40", "--set", f"freeze.vision={freeze_vision}"]
    task = VLMTask(resolve_config(parser().parse_args([*TINY_VLM, *args])), Dist())
    tower = sum(p.numel() for p in task.model.model.vision_tower.parameters())
    text = task.model.config.text_config
    language = task.parameters["total"] - tower
    trained = task.parameters["trainable"] - task.parameters["vision"]
    tokens, images = 4000, 40
    attention = 12 * text.num_hidden_layers * text.hidden_size * (tokens // images)
    per_token = 6 * trained + 4 * (language - trained) + attention
    per_patch = (2 if freeze_vision else 6) * tower
    expected = per_token * tokens + per_patch * task.num_image_tokens * images
    assert task.flops({"tokens": tokens, "images": images}) == pytest.approx(expected)
    assert (task.parameters["vision"] > 0) is not freeze_vision  # guard: the policy took
    task.close()


@pytest.fixture(scope="module")
def tiny_llm_task():
    from tests.support.trainer_runs import TINY
    from trainers.llm.__main__ import parser, resolve_config
    from trainers.llm.train import LLMTask

    cfg = resolve_config(parser().parse_args([*TINY, "--set", "data.synthetic_examples=200"]))
    return LLMTask(cfg, Dist())
