"""The gradient path: after one backward of the answer loss through a hard top-K the
participatory scorer and the balancer have gradients, and with the gates detached they have
none (the public v0.1's situation); the distillation target reaches cells the LM never saw; the
budget term reaches the balancer's threshold; the base model stays frozen."""

import pytest
import torch

from trainers.arr_coc.config import RelevanceConfig
from trainers.arr_coc.losses import distill_loss
from trainers.arr_coc.model import ArrCoc
from trainers.arr_coc.stages import set_trainable, stage_step
from trainers.lm.config import LoraConfig


def _model(base, **relevance) -> ArrCoc:
    torch.manual_seed(0)
    model = ArrCoc(base, RelevanceConfig(**relevance))
    set_trainable(model, stage=2, lora=LoraConfig(enabled=False))
    return model


def _grad_norms(module) -> dict[str, float]:
    return {
        n: 0.0 if p.grad is None else float(p.grad.norm()) for n, p in module.named_parameters()
    }


@pytest.mark.parametrize("detach", [False, True])
def test_answer_loss_reaches_the_scorer_and_balancer_only_through_the_gates(
    tiny_qwen, scene_batch, detach
):
    model = _model(tiny_qwen)
    result = stage_step(model, scene_batch, stage=2, detach_gates=detach)
    assert result.output.allocation.num_kept == [16] * scene_batch.num_examples  # a hard top-K
    if detach:  # top-K's indices alone: nothing trainable is behind the loss at all
        assert not result.loss_sum.requires_grad
        return
    (result.loss_sum / result.num_targets).backward()
    scorer = _grad_norms(model.head.participatory)
    weights = _grad_norms(model.head.balancer.weights)
    assert all(v > 0 for v in scorer.values()), scorer
    assert all(v > 0 for v in weights.values()), weights
    assert all(p.grad is None for p in tiny_qwen.model.parameters())
    model.zero_grad(set_to_none=True)


def test_distillation_reaches_cells_the_lm_never_saw(tiny_qwen, scene_batch):
    model = _model(tiny_qwen, distill_weight=1.0)
    out = model(scene_batch, distill=True, detach_gates=True)
    for score in out.relevance.scores:
        score.retain_grad()
    scores, targets = out.relevance.scores, out.saliency
    sum(
        distill_loss(s, t, temperature=0.05) for s, t in zip(scores, targets, strict=True)
    ).backward()
    for score, kept, target in zip(scores, out.allocation.indices, targets, strict=True):
        assert torch.isclose(target.sum(), torch.tensor(1.0)) and (target >= 0).all()
        dropped = torch.ones(score.numel(), dtype=torch.bool)
        dropped[kept] = False
        assert score.grad.flatten()[dropped].abs().sum() > 0
    assert all(p.grad is None for p in tiny_qwen.model.parameters())
    model.zero_grad(set_to_none=True)


def test_budget_term_reaches_the_threshold(tiny_qwen, scene_batch):
    model = _model(tiny_qwen, ce_weight=0.0, budget_weight=1.0)
    set_trainable(model, stage=3, lora=LoraConfig(enabled=False))  # the threshold trains
    result = stage_step(model, scene_batch, stage=3)
    result.loss_sum.backward()
    threshold = model.head.balancer.threshold.bias.grad
    # More threshold, fewer tokens expected: the budget term pushes it up (a negative grad).
    assert threshold is not None and float(threshold) < 0
    model.zero_grad(set_to_none=True)


def test_stage_one_trains_the_head_without_running_the_lm(tiny_qwen, scene_batch):
    model = _model(tiny_qwen)
    result = stage_step(model, scene_batch, stage=1)
    assert result.output.logits is None and result.num_targets == scene_batch.num_examples
    (result.loss_sum / result.num_targets).backward()
    assert all(v > 0 for v in _grad_norms(model.head.participatory).values())
    assert float(model.head.balancer.weights.weight.grad.norm()) > 0
    model.zero_grad(set_to_none=True)
