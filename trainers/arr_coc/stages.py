"""One forward pass of a training stage: the loss as a sum, what it is normalised by, metrics.

    model = ArrCoc(base, cfg.relevance)
    set_trainable(model, stage=2, lora=cfg.lora)       # what the stage's optimizer may touch
    result = stage_step(model, batch, stage=2)
    (result.loss_sum / global_num_targets).backward()  # the loop sums targets over ranks

1. Where to look: the score maps against the object masks (BCE + 1 - soft IoU), the LM is not
   run at all; per example with a mask (a batch may hold none: its count is 0; the data check
   that stage 1 has masks at all belongs before training).
2. Participatory: answer cross-entropy over the kept tokens (the straight-through gates carry it
   to the scores); per answer token. LoRA on the LM when `lora.enabled`.
3. Procedural: the balancer's threshold sets each image's budget; per example
   ce_weight * CE (mean over its answer tokens) + budget_weight * expected fraction kept.
With `relevance.distill_weight > 0` the stages in `relevance.distill_stages` (stage 2 by
default) add the distillation term for every example (`losses.distill_loss`; in stage 2
weighted by the example's answer tokens), except stage 1 of a base that trains too
(`train_base`: the debug preset's scratch base), which has no frozen model to take it from.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from trainers.arr_coc import losses
from trainers.arr_coc.allocation import expected_budget
from trainers.arr_coc.inputs import Batch
from trainers.arr_coc.metrics import answer_metrics, relevance_metrics
from trainers.arr_coc.model import ArrCoc, Output
from trainers.lm.config import LoraConfig


@dataclass
class StepResult:
    loss_sum: torch.Tensor
    num_targets: int  # stage 2: answer tokens; stages 1 and 3: examples
    metrics: dict[str, float]
    output: Output


def stage_step(
    model: ArrCoc,
    batch: Batch,
    *,
    stage: int,
    engine=None,
    train_base: bool = False,
    detach_gates: bool = False,
) -> StepResult:
    """The stage's loss on one batch, the forward run through `engine` (the model wrapped in
    DDP, say; the model itself by default). `train_base` (stage 1 of a scratch base) adds the
    base's answer CE over every visual token. `detach_gates` is the negative control: the same
    selection with gates that carry no gradient."""
    cfg = model.cfg
    all_tokens = stage == 1 and train_base
    distill = uses_distill(cfg, stage=stage, train_base=train_base)
    out = (engine or model)(
        batch,
        budget=1.0 if all_tokens else None,
        adaptive=stage == 3,
        run_lm=stage != 1 or all_tokens,
        distill=distill,
        # The base's own loss must not reach the scores through the gates.
        detach_gates=detach_gates or all_tokens,
    )
    loss_sum, num_targets, metrics = _STAGES[stage](out, batch, cfg, distill=distill)
    if all_tokens:
        loss_sum, num_targets, out = _with_base_loss(model, out, batch, loss_sum, metrics)
    if distill:
        weights = _distill_weights(out, stage)
        loss_sum = loss_sum + cfg.distill_weight * (weights * _distill(out, cfg)).sum()
    metrics = metrics | relevance_metrics(out, batch) | answer_metrics(out)
    return StepResult(loss_sum, num_targets, metrics, out)


def _with_base_loss(model: ArrCoc, out: Output, batch: Batch, loss_sum, metrics: dict):
    """Stage 1 with `train_base`: plus each example's mean answer CE over every visual token,
    counted per example; the output's allocation is then the budget's (for the metrics)."""
    sums, counts = losses.answer_ce(out.logits, out.labels)
    ce = sums / counts.clamp(min=1)
    metrics["loss/base_ce"] = ce.mean().item()
    with torch.no_grad():
        budgeted = model.allocate(out.relevance, budget=None, adaptive=False)
    kept = dataclasses.replace(out, allocation=budgeted)
    return loss_sum + ce.sum(), batch.num_examples, kept


def uses_distill(cfg, *, stage: int, train_base: bool = False) -> bool:
    """Whether the stage adds the dense target: it is the frozen model's, so never while the
    base itself trains."""
    frozen = not (stage == 1 and train_base)
    return cfg.distill_weight > 0 and stage in cfg.distill_stages and frozen


def _stage1(out: Output, batch: Batch, cfg, *, distill: bool) -> tuple[torch.Tensor, int, dict]:
    terms = [
        losses.mask_loss(score, mask.to(score))
        for score, mask in zip(out.relevance.scores, batch.cell_masks, strict=True)
        if losses.has_mask(mask)
    ]
    # A batch without masks adds nothing but stays in the graph (every DDP rank must reduce);
    # with distillation every example has a target, so every example counts.
    total = torch.stack(terms).sum() if terms else out.relevance.scores[0].sum() * 0
    count = batch.num_examples if distill else len(terms)
    return total, count, {"loss/mask": total.item() / max(1, len(terms))}


def _stage2(out: Output, batch: Batch, cfg, *, distill: bool) -> tuple[torch.Tensor, int, dict]:
    sums, counts = losses.answer_ce(out.logits, out.labels)
    num = int(counts.sum())
    return sums.sum(), num, {"loss/answer_ce": sums.sum().item() / max(1, num)}


def _stage3(out: Output, batch: Batch, cfg, *, distill: bool) -> tuple[torch.Tensor, int, dict]:
    sums, counts = losses.answer_ce(out.logits, out.labels)
    ce = sums / counts.clamp(min=1)
    budget = expected_budget(out.allocation)
    total = (cfg.ce_weight * ce + cfg.budget_weight * budget).sum()
    metrics = {"loss/answer_ce": ce.mean().item(), "loss/expected_budget": budget.mean().item()}
    return total, batch.num_examples, metrics


_STAGES = {1: _stage1, 2: _stage2, 3: _stage3}


def _distill(out: Output, cfg) -> torch.Tensor:
    return torch.stack(
        [
            losses.distill_loss(score, target.to(score), temperature=cfg.temperature)
            for score, target in zip(out.relevance.scores, out.saliency, strict=True)
        ]
    )


def _distill_weights(out: Output, stage: int) -> torch.Tensor:
    # Stage 2 normalises by answer tokens: an example's term counts once per token it has.
    if stage == 2:
        return losses.answer_ce(out.logits, out.labels)[1].float()
    return torch.ones(len(out.relevance.scores), device=out.relevance.scores[0].device)


def set_trainable(model: ArrCoc, *, stage: int, lora: LoraConfig) -> list[torch.nn.Parameter]:
    """Freeze the base model (adding LoRA adapters to its LM in stages 2 and 3 when enabled) and
    return the parameters the stage trains: the relevance head, and the adapters."""
    model.vlm.requires_grad_(False)
    model.head.requires_grad_(True)
    # The threshold sets the budget in stage 3 only; elsewhere it is outside the graph (and
    # DDP would wait for its gradient).
    model.head.balancer.threshold.requires_grad_(stage == 3)
    if stage != 1 and lora.enabled:
        add_lora(model, lora)
    return [p for p in model.parameters() if p.requires_grad]


def add_lora(model: ArrCoc, cfg: LoraConfig) -> None:
    """LoRA adapters on the LM's projections only, injected in place (no wrapper, so the
    model's own API stays reachable); only they train."""
    from peft import LoraConfig as PeftLoraConfig
    from peft import inject_adapter_in_model

    if any("lora_" in name for name, _ in model.vlm.named_parameters()):
        return
    targets = "|".join(cfg.target_modules)
    peft_config = PeftLoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=rf".*language_model.*\.({targets})",
    )
    inject_adapter_in_model(peft_config, model.vlm)
    for name, param in model.vlm.named_parameters():
        param.requires_grad_("lora_" in name)
