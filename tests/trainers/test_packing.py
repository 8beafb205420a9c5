"""trainers.common.packing: layout, targets and stats of packed rows, and no attention across
examples in a real (tiny) Llama.

Run: `.venv/bin/pytest -q tests/trainers/test_packing.py`.
"""

from __future__ import annotations

import random

import pytest
import torch

from trainers.common.packing import (
    IGNORE,
    Example,
    PackStats,
    assign_rows,
    efficiency,
    fit_length,
    pack,
    segment_ids,
)

PAD = 0


def _example(start: int, n: int, *, prompt: int = 0) -> Example:
    """Tokens start..start+n-1 (distinct across examples); the first `prompt` ones masked."""
    return Example(list(range(start, start + n)), [i >= prompt for i in range(n)])


def _random_examples(num: int, *, seed: int, max_len: int) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for _ in range(num):
        n = rng.randint(2, max_len)
        prompt = rng.randint(0, n - 1)  # at least the last token is trainable
        examples.append(
            Example([rng.randint(1, 99) for _ in range(n)], [i >= prompt for i in range(n)])
        )
    return examples


def _segments(packed, r: int) -> list[tuple[int, int]]:
    """(start, end) of each block of row r, padding included."""
    seg = segment_ids(packed.position_ids[r]).tolist()
    bounds = [i for i in range(1, len(seg)) if seg[i] != seg[i - 1]]
    starts = [0, *bounds]
    return list(zip(starts, [*bounds, len(seg)], strict=True))


def _placements(packed, examples: list[Example]) -> list[tuple[int, int, Example]]:
    """(row, start, example) for every packed example, found by its tokens."""
    found = []
    for r in range(packed.input_ids.shape[0]):
        for start, end in _segments(packed, r):
            if start >= int(packed.row_tokens[r]):
                continue  # padding block
            ids = packed.input_ids[r, start:end].tolist()
            matches = [ex for ex in examples if ex.token_ids == ids]
            assert matches, f"row {r} [{start}:{end}] holds tokens of no example"
            found.append((r, start, matches[0]))
    return found


# --- layout ---------------------------------------------------------------------------------


def test_known_layout_is_best_fit_decreasing():
    # lengths 6,4,3,5,2 into rows of 10: 6+4 and 5+3+2, both full.
    examples = [_example(1, 6), _example(11, 4), _example(21, 3), _example(31, 5), _example(41, 2)]
    packed = pack(examples, seq_len=10, pad_id=PAD)
    assert packed.input_ids.tolist() == [
        [1, 2, 3, 4, 5, 6, 11, 12, 13, 14],
        [31, 32, 33, 34, 35, 21, 22, 23, 41, 42],
    ]
    assert packed.position_ids.tolist() == [
        [0, 1, 2, 3, 4, 5, 0, 1, 2, 3],
        [0, 1, 2, 3, 4, 0, 1, 2, 0, 1],
    ]
    assert packed.row_tokens.tolist() == [10, 10]
    assert packed.stats == PackStats(examples=5, rows=2, tokens=20, target_tokens=15)
    assert efficiency(packed.stats, 10) == 1.0


def test_position_ids_restart_at_zero_for_every_example():
    examples = _random_examples(40, seed=1, max_len=12)
    packed = pack(examples, seq_len=32, pad_id=PAD)
    placements = _placements(packed, examples)
    assert len(placements) == len(examples)
    assert packed.input_ids.shape[0] < len(examples)  # rows really hold several examples
    for r, start, ex in placements:
        n = len(ex.token_ids)
        assert packed.position_ids[r, start : start + n].tolist() == list(range(n))


def test_segment_ids_on_explicit_positions():
    positions = torch.tensor(
        [[0, 1, 2, 0, 1, 0, 1, 2, 3, 0, 1], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]]
    )
    assert segment_ids(positions).tolist() == [
        [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3],
        [0] * 11,
    ]


def test_segment_ids_one_block_per_example_and_padding_its_own():
    examples = [_example(1, 5), _example(11, 7), _example(21, 4)]
    packed = pack(examples, seq_len=20, pad_id=PAD)
    assert packed.input_ids.shape[0] == 1  # 16 tokens fit one row, with 4 of padding
    seg = segment_ids(packed.position_ids)[0].tolist()
    assert seg == [0] * 7 + [1] * 5 + [2] * 4 + [3] * 4
    assert packed.input_ids[0, 16:].tolist() == [PAD] * 4


def test_padding_of_one_token_is_still_its_own_block():
    packed = pack([_example(1, 4), _example(11, 4)], seq_len=9, pad_id=PAD)
    assert packed.input_ids.shape[0] == 1
    assert segment_ids(packed.position_ids)[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2]


# --- targets ----------------------------------------------------------------------------------


def test_targets_match_a_per_example_reference():
    examples = _random_examples(30, seed=2, max_len=10)
    packed = pack(examples, seq_len=24, pad_id=PAD)
    expected = torch.full_like(packed.targets, IGNORE)
    placements = _placements(packed, examples)
    assert len(placements) == len(examples)
    for r, start, ex in placements:
        for j in range(1, len(ex.token_ids)):
            if ex.trainable[j]:
                expected[r, start + j - 1] = ex.token_ids[j]
    assert torch.equal(packed.targets, expected)
    assert int((expected != IGNORE).sum()) > len(examples)  # not vacuous: many real targets


def test_targets_are_next_tokens_of_the_same_example():
    packed = pack(_random_examples(30, seed=3, max_len=10), seq_len=24, pad_id=PAD)
    seg = segment_ids(packed.position_ids)
    rows, cols = torch.nonzero(packed.targets != IGNORE, as_tuple=True)
    assert len(rows) > 0
    assert torch.equal(packed.targets[rows, cols], packed.input_ids[rows, cols + 1])
    assert torch.equal(seg[rows, cols], seg[rows, cols + 1])


def test_last_token_of_each_example_never_predicts_the_next_example():
    # Every token trainable: the only IGNOREs left are example ends and padding.
    examples = [_example(10 * i + 1, n, prompt=0) for i, n in enumerate([5, 3, 4, 6, 2])]
    packed = pack(examples, seq_len=12, pad_id=PAD)
    placements = _placements(packed, examples)
    assert max(sum(1 for p in placements if p[0] == r) for r in range(packed.targets.shape[0])) >= 2
    for r, start, ex in placements:
        assert packed.targets[r, start + len(ex.token_ids) - 1] == IGNORE
    # The first token of an example is never a target, even though it is marked trainable.
    assert packed.stats.target_tokens == sum(len(ex.token_ids) - 1 for ex in examples)
    for r in range(packed.targets.shape[0]):
        n = int(packed.row_tokens[r])
        assert (packed.targets[r, n - 1 :] == IGNORE).all()  # last real token and padding


def test_prompt_tokens_are_never_targets():
    examples = [_example(1, 8, prompt=5), _example(11, 6, prompt=3), _example(21, 5, prompt=4)]
    packed = pack(examples, seq_len=24, pad_id=PAD)
    assert packed.input_ids.shape[0] == 1
    targets = set(packed.targets[packed.targets != IGNORE].tolist())
    assert targets == {6, 7, 8, 14, 15, 16, 25}
    prompts = {
        t for ex in examples for t, ok in zip(ex.token_ids, ex.trainable, strict=True) if not ok
    }
    assert not targets & prompts
    assert packed.stats.target_tokens == 7


# --- truncation, dropping, stats ----------------------------------------------------------------


def test_overlong_truncate_keeps_the_head_and_counts():
    examples = [_example(1, 12, prompt=2), _example(51, 4, prompt=1)]
    kept, stats = fit_length(examples, seq_len=8, overlong="truncate")
    assert [ex.token_ids for ex in kept] == [list(range(1, 9)), [51, 52, 53, 54]]
    assert kept[0].trainable == [False, False] + [True] * 6
    assert (stats.examples, stats.truncated, stats.dropped) == (2, 1, 0)


def test_overlong_drop_drops_and_counts():
    examples = [_example(1, 12, prompt=2), _example(51, 4, prompt=1), _example(61, 9)]
    kept, stats = fit_length(examples, seq_len=8, overlong="drop")
    assert [ex.token_ids for ex in kept] == [[51, 52, 53, 54]]
    assert (stats.examples, stats.truncated, stats.dropped) == (3, 0, 2)


def test_exactly_seq_len_is_not_overlong():
    kept, stats = fit_length([_example(1, 8, prompt=1)], seq_len=8, overlong="drop")
    assert len(kept) == 1 and (stats.truncated, stats.dropped) == (0, 0)


def test_examples_left_with_no_target_are_dropped_and_counted():
    examples = [
        _example(1, 12, prompt=10),  # the response lies past seq_len: nothing left after truncation
        Example([21, 22, 23], [True, False, False]),  # only token 0 trainable: it is never a target
        Example([31, 32], [False, False]),
        _example(41, 5, prompt=4),  # kept: one target
    ]
    kept, stats = fit_length(examples, seq_len=8, overlong="truncate")
    assert [ex.token_ids for ex in kept] == [[41, 42, 43, 44, 45]]
    assert stats.dropped == 3
    assert stats.examples == len(kept) + stats.dropped
    packed = pack(examples, seq_len=8, pad_id=PAD)
    assert packed.stats.dropped == 3 and packed.stats.rows == 1 and packed.stats.target_tokens == 1


def test_pack_with_nothing_left_gives_zero_rows():
    packed = pack([Example([1, 2], [False, False])], seq_len=8, pad_id=PAD)
    assert packed.input_ids.shape == (0, 8)
    assert packed.stats.rows == 0 and packed.stats.dropped == 1
    assert efficiency(packed.stats, 8) == 0.0


def test_row_tokens_and_stats_tokens_agree_with_the_data():
    examples = _random_examples(50, seed=4, max_len=20)
    packed = pack(examples, seq_len=32, pad_id=PAD, overlong="truncate")
    real = torch.zeros_like(packed.input_ids, dtype=torch.bool)
    for r, start, ex in _placements(packed, examples):
        real[r, start : start + len(ex.token_ids)] = True
    assert torch.equal(packed.row_tokens, real.sum(1))
    assert (packed.input_ids[~real] == PAD).all()  # tokens are >= 1, so PAD marks padding exactly
    assert packed.stats.tokens == int(real.sum()) == sum(len(ex.token_ids) for ex in examples)
    assert packed.stats.rows == packed.input_ids.shape[0]
    assert efficiency(packed.stats, 32) == pytest.approx(int(real.sum()) / real.numel())


def test_efficiency_with_padding():
    packed = pack([_example(1, 5), _example(11, 7), _example(21, 4)], seq_len=20, pad_id=PAD)
    assert efficiency(packed.stats, 20) == pytest.approx(16 / 20)


# --- assign_rows ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_assign_rows_never_overfills_and_uses_each_example_once(seed):
    rng = random.Random(seed)
    seq_len = 64
    lengths = [rng.randint(1, seq_len) for _ in range(200)]
    rows = assign_rows(lengths, seq_len)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= seq_len for row in rows)
    assert len(rows) < len(lengths)  # rows really share
    # Best fit decreasing stays close to the lower bound on the number of rows.
    lower = -(-sum(lengths) // seq_len)
    assert len(rows) <= lower * 1.25 + 1


def test_assign_rows_fills_exactly_when_possible():
    assert assign_rows([6, 5, 4, 3, 2], 10) == [[0, 2], [1, 3, 4]]
    assert assign_rows([10, 10], 10) == [[0], [1]]
    assert assign_rows([], 10) == []


# --- the model-level invariant ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=128,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        use_cache=False,
    )  # as trainers/llm/model.py sets it
    config._attn_implementation = "sdpa"
    return LlamaForCausalLM(config).float().eval()


def _packed_row_and_examples():
    examples = [_example(3, 9, prompt=3), _example(40, 6, prompt=2), _example(80, 7, prompt=1)]
    packed = pack(examples, seq_len=26, pad_id=PAD)
    assert packed.input_ids.shape[0] == 1  # all three in one row, then 4 padding tokens
    placements = _placements(packed, examples)
    assert [start for _, start, _ in placements] == [0, 9, 16]
    return packed, placements


def test_packed_logits_equal_logits_of_each_example_alone(tiny_llama):
    packed, placements = _packed_row_and_examples()
    with torch.no_grad():
        logits = tiny_llama(input_ids=packed.input_ids, position_ids=packed.position_ids).logits
        for _, start, ex in placements:
            alone = tiny_llama(input_ids=torch.tensor([ex.token_ids])).logits[0]
            inside = logits[0, start : start + len(ex.token_ids)]
            assert torch.allclose(inside, alone, atol=1e-5), (start, (inside - alone).abs().max())


def test_without_position_reset_the_second_example_sees_the_first(tiny_llama):
    # Negative control: one plain arange over the row is one causal block, so the test above
    # would fail if the packer stopped resetting positions.
    packed, placements = _packed_row_and_examples()
    _, start, ex = placements[1]
    plain = torch.arange(packed.input_ids.shape[1]).unsqueeze(0)
    with torch.no_grad():
        logits = tiny_llama(input_ids=packed.input_ids, position_ids=plain).logits
        alone = tiny_llama(input_ids=torch.tensor([ex.token_ids])).logits[0]
    inside = logits[0, start : start + len(ex.token_ids)]
    assert (inside - alone).abs().max() > 1e-3


def test_project_model_builder_keeps_packed_examples_apart():
    # LlamaConfig defaults to use_cache=True, and transformers skips packed-sequence detection
    # whenever a cache exists; trainers/llm/model.py must keep turning the cache off.
    from trainers.lm.config import ModelConfig
    from trainers.lm.model import build_model

    torch.manual_seed(0)
    cfg = ModelConfig(
        tokenizer="trained",
        vocab_size=128,
        hidden_size=32,
        num_heads=4,
        num_kv_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = build_model(cfg, vocab_size=128).eval()
    packed, placements = _packed_row_and_examples()
    with torch.no_grad():
        logits = model(input_ids=packed.input_ids, position_ids=packed.position_ids).logits
        for _, start, ex in placements[1:]:
            alone = model(input_ids=torch.tensor([ex.token_ids])).logits[0]
            assert torch.allclose(logits[0, start : start + len(ex.token_ids)], alone, atol=1e-5)


def test_row_targets_count_each_rows_targets():
    examples = [Example([1, 2, 3, 4], [False, False, True, True]), Example([5, 6], [False, True])]
    packed = pack(examples, seq_len=8, pad_id=0)
    assert packed.row_targets.tolist() == (packed.targets != IGNORE).sum(dim=1).tolist() == [3]
    assert packed.stats.target_tokens == 3
