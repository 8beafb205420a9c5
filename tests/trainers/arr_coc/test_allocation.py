"""The allocator on plain tensors: budgets as fractions or counts, a hard top-K in cell order,
gates that are 1 in value and carry the keep probability's gradient, an adaptive budget within
its bounds, and the random-K and uniform-grid baselines."""

import pytest
import torch

from trainers.arr_coc.allocation import (
    allocate,
    allocate_adaptive,
    expected_budget,
    gate,
    grid_allocation,
    num_keep,
    random_allocation,
)


@pytest.mark.parametrize(
    ("cells", "budget", "expected"),
    [(64, 0.25, 16), (64, 1.0, 64), (64, 0.001, 1), (64, 10, 10), (64, 200, 64), (196, 0.5, 98)],
)
def test_num_keep(cells, budget, expected):
    assert num_keep(cells, budget) == expected


def test_hard_top_k_with_a_straight_through_gate():
    scores = [torch.tensor([[0.1, 0.9], [0.5, 0.7]], requires_grad=True)]
    alloc = allocate(scores, budget=0.5, temperature=0.1)
    assert alloc.indices[0].tolist() == [1, 3]  # the two best, in the LM's token order
    assert torch.equal(alloc.gates[0], torch.ones(2))
    alloc.gates[0].sum().backward()
    # d(gate)/d(score) = p (1 - p) / T at the kept cells only; the threshold (0.6) is held.
    p = torch.sigmoid((torch.tensor([0.9, 0.7]) - 0.6) / 0.1)
    expected = torch.zeros(4)
    expected[[1, 3]] = p * (1 - p) / 0.1
    assert torch.allclose(scores[0].grad.flatten(), expected)
    assert (alloc.probs[0][alloc.indices[0]] > 0.5).all() and (alloc.probs[0][[0, 2]] < 0.5).all()


def test_gate_value_is_one_and_its_gradient_is_the_probabilitys():
    probs = torch.tensor([0.2, 0.8], requires_grad=True)
    g = gate(probs)
    assert torch.equal(g, torch.ones(2))
    (g * torch.tensor([3.0, -1.0])).sum().backward()
    assert torch.equal(probs.grad, torch.tensor([3.0, -1.0]))


def test_adaptive_budget_follows_the_threshold_within_bounds():
    scores = [torch.linspace(0, 1, 100).view(10, 10)] * 3
    thresholds = torch.tensor([0.7, 0.01, 0.999], requires_grad=True)
    alloc = allocate_adaptive(
        scores, thresholds=thresholds, temperature=0.05, min_budget=0.05, max_budget=0.5
    )
    assert alloc.num_kept == [30, 50, 5]  # 30 above 0.7; 99 clipped to 50; 0 raised to 5
    expected_budget(alloc).sum().backward()
    assert (thresholds.grad < 0).all()  # a higher threshold would keep fewer


def test_baselines_keep_k_distinct_cells():
    generator = torch.Generator().manual_seed(0)
    rand = random_allocation([64, 64], budget=0.25, generator=generator)
    assert rand.num_kept == [16, 16] and not torch.equal(rand.indices[0], rand.indices[1])
    grid = grid_allocation([(8, 8), (4, 12), (1, 9)], budget=0.25)
    assert grid.num_kept == [16, 12, 2]
    for kept in grid.indices + rand.indices:
        assert kept.unique().numel() == kept.numel() and torch.equal(kept, kept.sort().values)
    rows, cols = grid.indices[0] // 8, grid.indices[0] % 8
    assert rows.unique().numel() == 4 and cols.unique().numel() == 4  # a lattice, not a block
