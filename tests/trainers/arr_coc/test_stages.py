"""A stage's forward as a task object drives it: loss sum, target count and metrics per stage;
a sample's scores independent of its batch; LoRA adapters on the LM only."""

import pytest
import torch

from tests.support.tiny_qwen3_vl import make_batch, make_tiny_qwen
from trainers.arr_coc.config import RelevanceConfig
from trainers.arr_coc.model import ArrCoc
from trainers.arr_coc.scenes import scene_records
from trainers.arr_coc.stages import set_trainable, stage_step
from trainers.common.packing import IGNORE
from trainers.lm.config import LoraConfig

KNOWING = [
    f"knowing/{w}_{s}"
    for w in ("propositional", "perspectival", "participatory")
    for s in ("mean", "std")
]
ALLOCATION = [f"allocation/{s}_tokens" for s in ("mean", "min", "max", "std")]
RELEVANCE = ["relevance/precision_at_k", "relevance/recall_at_k", "relevance/soft_iou"]


def _model(base, **relevance) -> ArrCoc:
    torch.manual_seed(0)
    model = ArrCoc(base, RelevanceConfig(**relevance))
    set_trainable(model, stage=2, lora=LoraConfig(enabled=False))
    return model


@torch.no_grad()
def test_a_samples_scores_do_not_depend_on_its_batch(tiny_qwen, scene_batch):
    model = _model(tiny_qwen)
    alone = make_batch(tiny_qwen, scene_records(1, seed=0))  # the batch's first record
    one, many = model.relevance(alone), model.relevance(scene_batch)
    assert torch.allclose(one.scores[0], many.scores[0], atol=1e-6)
    assert torch.allclose(one.maps[0], many.maps[0], atol=1e-6)
    assert torch.allclose(one.weights[0], many.weights[0], atol=1e-6)
    assert not torch.allclose(many.scores[0], many.scores[1])  # guard: samples do differ


@torch.no_grad()
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_returns_its_loss_targets_and_metrics(tiny_qwen, scene_batch, stage):
    result = stage_step(_model(tiny_qwen), scene_batch, stage=stage)
    answer_tokens = int((scene_batch.labels != IGNORE).sum())
    expected_targets = {1: scene_batch.num_examples, 2: answer_tokens, 3: scene_batch.num_examples}
    assert result.num_targets == expected_targets[stage]
    assert torch.isfinite(result.loss_sum) and result.loss_sum > 0
    keys = set(KNOWING + ALLOCATION + RELEVANCE + ["compression_ratio", "balancer/participatory"])
    assert keys <= set(result.metrics)
    assert ("answer/accuracy" in result.metrics) == (stage != 1)
    kept = result.output.allocation.num_kept
    if stage == 3:  # the balancer's threshold (0.5 at start) decides, within [5 %, 50 %] of 64
        assert all(4 <= k <= 32 for k in kept)
        assert result.metrics["loss/expected_budget"] > 0
    else:
        assert kept == [16] * scene_batch.num_examples and result.metrics["compression_ratio"] == 4


def test_lora_trains_adapters_on_the_lm_only(scene_batch):
    base = make_tiny_qwen()
    model = ArrCoc(base, RelevanceConfig())
    trained = set_trainable(
        model, stage=2, lora=LoraConfig(enabled=True, r=4, alpha=8, dropout=0.0)
    )
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    adapters = {n for n in names if "lora_" in n}
    assert adapters and all("language_model" in n for n in adapters)
    head = {n for n, _ in model.head.named_parameters(prefix="head")}
    # Stage 3's budget threshold stays out of stage 2 (it is outside that stage's graph).
    assert names - adapters == {n for n in head if ".threshold." not in n}
    assert len(trained) == len(names)
    result = stage_step(model, scene_batch, stage=2)
    (result.loss_sum / result.num_targets).backward()
    lora_b = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(g is not None and g.abs().sum() > 0 for g in lora_b)
    assert all(p.grad is None for n, p in model.vlm.named_parameters() if "lora_" not in n)
