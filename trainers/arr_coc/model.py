"""ARR-COC: a Qwen3-VL whose LM sees only the visual tokens that matter for the question.

    model = ArrCoc(base, cfg.relevance)
    out = model(batch)                         # relevance, allocation, logits over kept tokens
    out = model(batch, budget=1.0)             # every token: the base model's logits
    out = model(batch, adaptive=True)          # stage 3: the balancer sets each image's budget
    out = model(batch, run_lm=False)           # scores and allocation only (stage 1)

Per image: the 13-channel texture on the model's merged-token grid, three score maps, the
balancer's weights and threshold, their weighted sum, the allocation, and the LM over the kept
tokens with their own positions and DeepStack features (`trainers.arr_coc.selection`). Only
`head` (the participatory scorer and the balancer) is ARR-COC's own; `vlm` is the base model.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from trainers.arr_coc import allocation as alloc_lib
from trainers.arr_coc import selection
from trainers.arr_coc.balancing import TensionBalancer, combine
from trainers.arr_coc.config import RelevanceConfig
from trainers.arr_coc.inputs import Batch
from trainers.arr_coc.knowing import (
    ParticipatoryScorer,
    perspectival,
    propositional,
    query_embedding,
)
from trainers.arr_coc.qwen import Base
from trainers.arr_coc.texture import Geometry, texture_arrays


@dataclass
class Relevance:
    maps: list[torch.Tensor]  # per image [3, h, w]: propositional, perspectival, participatory
    weights: torch.Tensor  # [B, 3] the balancer's
    thresholds: torch.Tensor  # [B] the balancer's, for the adaptive budget
    scores: list[torch.Tensor]  # per image [h, w] in [0, 1]: the weighted sum


@dataclass
class Output:
    relevance: Relevance
    allocation: alloc_lib.Allocation
    logits: torch.Tensor | None  # [B, L', V] over the kept sequence; None without the LM
    labels: torch.Tensor | None  # [B, L'] aligned with logits
    saliency: list[torch.Tensor] | None  # per image [num_cells], with `distill=True`


class RelevanceHead(nn.Module):
    """The trainable parts: the participatory scorer and the tension balancer."""

    def __init__(self, *, dim: int, cfg: RelevanceConfig) -> None:
        super().__init__()
        self.participatory = ParticipatoryScorer(hidden=cfg.scorer_hidden, dim=dim)
        self.balancer = TensionBalancer(dim=dim, hidden=cfg.balancer_hidden)

    def forward(self, textures: list[torch.Tensor], queries: torch.Tensor) -> Relevance:
        maps = [
            torch.stack([propositional(t), perspectival(t), self.participatory(t, q)])
            for t, q in zip(textures, queries, strict=True)
        ]
        weights, thresholds = self.balancer(maps, queries)
        return Relevance(maps, weights, thresholds, combine(maps, weights))


class ArrCoc(nn.Module):
    def __init__(self, base: Base, cfg: RelevanceConfig) -> None:
        super().__init__()
        self.vlm = base.model
        self.head = RelevanceHead(dim=base.hidden_size, cfg=cfg)
        self.cfg = cfg
        self.geometry = Geometry.of(base.image_processor)
        self.image_token_id = base.image_token_id

    def relevance(self, batch: Batch) -> Relevance:
        textures = texture_arrays(batch.pixel_values, batch.image_grid_thw, geometry=self.geometry)
        embeddings = self.vlm.get_input_embeddings()
        # Detached: the head's losses train the head, never the base's embeddings (a no-op
        # with a frozen base; stage 1 of a scratch base trains the base by its own loss).
        queries = query_embedding(
            embeddings, question_ids=batch.question_ids, question_mask=batch.question_mask
        ).detach()
        return self.head([t.to(queries) for t in textures], queries)

    def allocate(self, relevance: Relevance, *, budget: float | None, adaptive: bool):
        cfg = self.cfg
        if adaptive:
            return alloc_lib.allocate_adaptive(
                relevance.scores,
                thresholds=relevance.thresholds,
                temperature=cfg.temperature,
                min_budget=cfg.min_budget,
                max_budget=cfg.max_budget,
                anchor=cfg.budget,  # the balancer moves each image's cut from the fixed one
            )
        budget = cfg.budget if budget is None else budget
        return alloc_lib.allocate(relevance.scores, budget=budget, temperature=cfg.temperature)

    def forward(
        self,
        batch: Batch,
        *,
        budget: float | None = None,
        adaptive: bool = False,
        allocation: alloc_lib.Allocation | None = None,
        run_lm: bool = True,
        distill: bool = False,
        detach_gates: bool = False,
    ) -> Output:
        """`allocation` overrides the scores' own (the baselines); `detach_gates` keeps the
        selection but cuts the gates' gradient (the negative control)."""
        relevance = self.relevance(batch)
        alloc = allocation or self.allocate(relevance, budget=budget, adaptive=adaptive)
        if detach_gates:
            alloc = alloc.detached()
        if not (run_lm or distill):
            return Output(relevance, alloc, None, None, None)
        visual = selection.prepare(self.vlm, batch, image_token_id=self.image_token_id)
        target = selection.saliency(self.vlm, batch, visual=visual) if distill else None
        logits = labels = None
        if run_lm:
            logits, labels = selection.forward_kept(
                self.vlm, batch, visual=visual, indices=alloc.indices, gates=alloc.gates
            )
        return Output(relevance, alloc, logits, labels, target)
