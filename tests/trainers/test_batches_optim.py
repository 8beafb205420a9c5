"""trainers.common.batches (row order per step and rank) and trainers.common.optim (parameter
groups, warmup + cosine schedule).

Run: `.venv/bin/pytest -q tests/trainers/test_batches_optim.py`.
"""

from __future__ import annotations

import pytest
import torch

from trainers.common.batches import global_batch_rows, rank_micro_batches
from trainers.common.optim import build_optimizer, build_scheduler, lr_factor

# --- global_batch_rows ----------------------------------------------------------------------------


def _rows(num_steps: int, *, num_rows: int, global_batch: int, seed: int) -> list[int]:
    out = []
    for step in range(num_steps):
        out += global_batch_rows(step, num_rows=num_rows, global_batch=global_batch, seed=seed)
    return out


def test_deterministic_by_seed():
    a = _rows(5, num_rows=20, global_batch=4, seed=7)
    assert a == _rows(5, num_rows=20, global_batch=4, seed=7)
    assert a != _rows(5, num_rows=20, global_batch=4, seed=8)
    assert a[:20] != list(range(20))  # really shuffled


@pytest.mark.parametrize(("num_rows", "global_batch"), [(20, 4), (10, 4), (7, 3), (5, 8)])
def test_every_epoch_covers_each_row_once_with_a_new_order(num_rows, global_batch):
    # Batches cross epoch boundaries when global_batch does not divide num_rows.
    num_epochs = 4
    steps = -(-num_epochs * num_rows // global_batch)
    seq = _rows(steps, num_rows=num_rows, global_batch=global_batch, seed=3)
    epochs = [seq[e * num_rows : (e + 1) * num_rows] for e in range(num_epochs)]
    for epoch in epochs:
        assert sorted(epoch) == list(range(num_rows))
    assert len({tuple(e) for e in epochs}) > 1  # a new permutation each epoch


def test_a_step_equals_the_slice_of_the_row_stream():
    # Resuming at any step reads exactly what the uninterrupted run reads.
    seq = _rows(12, num_rows=10, global_batch=4, seed=1)
    for step in range(12):
        rows = global_batch_rows(step, num_rows=10, global_batch=4, seed=1)
        assert rows == seq[step * 4 : (step + 1) * 4]


# --- rank_micro_batches ---------------------------------------------------------------------------


def test_ranks_concatenated_equal_one_rank():
    rows = global_batch_rows(3, num_rows=50, global_batch=8, seed=0)
    one = rank_micro_batches(rows, rank=0, world_size=1, micro_batch=2)
    assert one == [rows[0:2], rows[2:4], rows[4:6], rows[6:8]]
    two = [
        mb for r in range(2) for mb in rank_micro_batches(rows, rank=r, world_size=2, micro_batch=2)
    ]
    assert two == one
    four = [
        mb for r in range(4) for mb in rank_micro_batches(rows, rank=r, world_size=4, micro_batch=2)
    ]
    assert four == one
    assert rank_micro_batches(rows, rank=1, world_size=2, micro_batch=4) == [rows[4:8]]


def test_not_divisible_error_names_the_sizes():
    with pytest.raises(ValueError) as err:
        rank_micro_batches(list(range(12)), rank=0, world_size=2, micro_batch=4)
    assert str(err.value) == (
        "train.global_batch_size=12 must be a multiple of train.micro_batch_size=4 x world size 2"
    )


# --- lr_factor ------------------------------------------------------------------------------------

W, MAX, MIN = 10, 110, 0.1


def _f(step: int) -> float:
    return lr_factor(step, warmup_steps=W, max_steps=MAX, min_ratio=MIN)


def test_warmup_is_linear_to_one():
    warm = [_f(s) for s in range(W)]
    assert warm[0] == pytest.approx(1 / W)
    assert warm[-1] == pytest.approx(1.0)
    steps = [b - a for a, b in zip(warm, warm[1:], strict=False)]
    assert steps == pytest.approx([1 / W] * (W - 1))


def test_peak_at_end_of_warmup_and_min_at_max_steps():
    assert _f(W) == pytest.approx(1.0)
    assert _f(MAX) == pytest.approx(MIN)
    assert _f(MAX + 50) == pytest.approx(MIN)  # stays at the floor past max_steps
    assert _f((W + MAX) // 2) == pytest.approx(MIN + (1 - MIN) * 0.5)  # cosine midpoint


def test_monotone_decreasing_after_warmup():
    after = [_f(s) for s in range(W, MAX + 1)]
    assert all(b < a for a, b in zip(after, after[1:], strict=False))


def test_no_warmup_starts_at_peak():
    assert lr_factor(0, warmup_steps=0, max_steps=10, min_ratio=0.0) == pytest.approx(1.0)
    assert lr_factor(10, warmup_steps=0, max_steps=10, min_ratio=0.0) == pytest.approx(0.0)
    assert lr_factor(5, warmup_steps=0, max_steps=10, min_ratio=0.0) == pytest.approx(0.5)


def test_scheduler_applies_the_factor():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = build_scheduler(opt, warmup_steps=4, max_steps=20, min_ratio=0.25)
    seen = []
    for _ in range(21):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen[0] == pytest.approx(0.5)
    assert seen[3] == pytest.approx(2.0)
    assert seen[20] == pytest.approx(0.5)
    assert seen[4] == pytest.approx(
        2.0 * lr_factor(4, warmup_steps=4, max_steps=20, min_ratio=0.25)
    )


# --- build_optimizer ------------------------------------------------------------------------------


class _Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.linear = torch.nn.Linear(4, 4)  # weight 2-D, bias 1-D
        self.norm = torch.nn.LayerNorm(4)  # 1-D weight and bias
        self.frozen = torch.nn.Linear(4, 4)
        self.frozen.requires_grad_(False)
        self.scale = torch.nn.Parameter(torch.ones(()))  # 0-D


def test_param_groups_by_dimension_and_frozen_skipped():
    net = _Net()
    opt = build_optimizer(net, lr=1e-3, weight_decay=0.1, betas=(0.9, 0.95), eps=1e-8)
    decay, no_decay = opt.param_groups
    ids = lambda group: {id(p) for p in group["params"]}  # noqa: E731
    assert ids(decay) == {id(net.embed.weight), id(net.linear.weight)}
    assert ids(no_decay) == {
        id(net.linear.bias),
        id(net.norm.weight),
        id(net.norm.bias),
        id(net.scale),
    }
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    frozen = {id(p) for p in net.frozen.parameters()}
    assert not frozen & (ids(decay) | ids(no_decay))
    assert opt.param_groups[0]["lr"] == 1e-3 and opt.param_groups[0]["betas"] == (0.9, 0.95)
    assert opt.param_groups[0]["eps"] == 1e-8


def test_decay_group_actually_decays():
    torch.manual_seed(0)
    net = torch.nn.Linear(3, 3)
    before_w, before_b = net.weight.detach().clone(), net.bias.detach().clone()
    opt = build_optimizer(net, lr=0.1, weight_decay=0.5, betas=(0.9, 0.95), eps=1e-8)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)  # no gradient: only decay can move a parameter
    opt.step()
    assert torch.allclose(net.weight, before_w * (1 - 0.1 * 0.5))
    assert torch.equal(net.bias, before_b)
    assert not torch.allclose(net.weight.detach(), before_w)  # not vacuous: it moved
