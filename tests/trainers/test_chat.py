"""trainers.lm.chat: record checks, the default chat template, and prompt masking with a BPE
tokenizer trained in-process.

Run: `.venv/bin/pytest -q tests/trainers/test_chat.py`.
"""

from __future__ import annotations

import pytest

from trainers.lm.chat import (
    DEFAULT_CHAT_TEMPLATE,
    check_record,
    prompt_and_answer,
    render_prompt,
    tokenize_record,
)

SYSTEM = "You are a helpful assistant."
CONVERSATION = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "what is 12+30?"},
    {"role": "assistant", "content": "42"},
    {"role": "user", "content": "hello there"},
    {"role": "assistant", "content": "general kenobi"},
]


@pytest.fixture(scope="module")
def tok():
    from trainers.lm.tokenizer import train_tokenizer

    texts = [
        SYSTEM,
        "what is 12+30?",
        "42",
        "hello there",
        "general kenobi",
        "the answer is 7",
        "what is 3+4?",
        "7",
    ] * 4
    return train_tokenizer(texts, vocab_size=320)


def _runs(example) -> list[list[int]]:
    """Contiguous runs of trainable token ids."""
    runs, current = [], []
    for token, trainable in zip(example.token_ids, example.trainable, strict=True):
        if trainable:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


def _assert_is_turn(tok, ids: list[int], content: str) -> None:
    """A trainable run is the assistant content and its closing EOS (a trailing newline allowed)."""
    assert tok.eos_token_id in ids
    text = tok.decode(ids, skip_special_tokens=False)
    head = content + tok.eos_token
    assert text.startswith(head) and text[len(head) :] in ("", "\n"), repr(text)


# --- template -------------------------------------------------------------------------------


def test_trained_tokenizer_uses_the_default_template(tok):
    assert tok.chat_template == DEFAULT_CHAT_TEMPLATE


def test_default_template_renders_exactly(tok):
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert (
        tok.apply_chat_template(messages, tokenize=False)
        == "<s><|user|>\nhi\n<|assistant|>\nyo</s>\n"
    )
    with_system = [{"role": "system", "content": "be brief"}, *messages]
    assert (
        tok.apply_chat_template(with_system, tokenize=False)
        == "<s><|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\nyo</s>\n"
    )


def test_default_template_generation_prompt(tok):
    messages = [{"role": "user", "content": "hi"}]
    assert tok.apply_chat_template(messages, tokenize=False) == "<s><|user|>\nhi\n"
    assert (
        tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        == "<s><|user|>\nhi\n<|assistant|>\n"
    )
    assert render_prompt(tok, messages) == "<s><|user|>\nhi\n<|assistant|>\n"


def test_role_markers_are_single_tokens(tok):
    for marker in ("<|system|>", "<|user|>", "<|assistant|>", "<s>", "</s>"):
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1, marker


# --- masking --------------------------------------------------------------------------------


def test_prompt_response_masks_the_prompt(tok):
    record = {"prompt": "what is 12+30?", "response": "42"}
    ex = tokenize_record(tok, record)
    rendered = "<s><|user|>\nwhat is 12+30?\n<|assistant|>\n42</s>\n"
    assert ex.token_ids == tok(rendered, add_special_tokens=False)["input_ids"]
    assert len(ex.trainable) == len(ex.token_ids)
    prompt_ids = tok("<s><|user|>\nwhat is 12+30?\n<|assistant|>\n", add_special_tokens=False)[
        "input_ids"
    ]
    n = len(prompt_ids)
    assert ex.token_ids[:n] == prompt_ids
    assert not any(ex.trainable[:n])
    # Response digits and the closing EOS are trainable.
    response_ids = tok("42</s>", add_special_tokens=False)["input_ids"]
    assert ex.token_ids[n : n + len(response_ids)] == response_ids
    assert all(ex.trainable[n : n + len(response_ids)])
    assert ex.token_ids[n + len(response_ids) - 1] == tok.eos_token_id
    runs = _runs(ex)
    assert len(runs) == 1
    _assert_is_turn(tok, runs[0], "42")


def test_multi_turn_only_assistant_turns_are_trainable(tok):
    ex = tokenize_record(tok, {"messages": CONVERSATION})
    rendered = tok.apply_chat_template(CONVERSATION, tokenize=False)
    assert ex.token_ids == tok(rendered, add_special_tokens=False)["input_ids"]
    runs = _runs(ex)
    assert len(runs) == 2
    _assert_is_turn(tok, runs[0], "42")
    _assert_is_turn(tok, runs[1], "general kenobi")
    # No role marker, BOS, system or user text among the targets.
    trainable_ids = {t for t, ok in zip(ex.token_ids, ex.trainable, strict=True) if ok}
    markers = set(tok.convert_tokens_to_ids(["<|system|>", "<|user|>", "<|assistant|>", "<s>"]))
    assert not trainable_ids & markers
    masked_text = tok.decode(
        [t for t, ok in zip(ex.token_ids, ex.trainable, strict=True) if not ok]
    )
    assert (
        SYSTEM in masked_text and "what is 12+30?" in masked_text and "hello there" in masked_text
    )
    assert "kenobi" not in masked_text


def test_mask_prompt_false_trains_every_token(tok):
    masked = tokenize_record(tok, {"messages": CONVERSATION})
    ex = tokenize_record(tok, {"messages": CONVERSATION}, mask_prompt=False)
    assert ex.token_ids == masked.token_ids
    assert all(ex.trainable) and not all(masked.trainable)


def test_prompt_response_and_messages_forms_agree(tok):
    a = tokenize_record(tok, {"prompt": "what is 3+4?", "response": "7"})
    b = tokenize_record(
        tok,
        {
            "messages": [
                {"role": "user", "content": "what is 3+4?"},
                {"role": "assistant", "content": "7"},
            ]
        },
    )
    assert (a.token_ids, a.trainable) == (b.token_ids, b.trainable)


# --- check_record ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"prompt": "x"}, "missing field 'response' (expected prompt/response or messages)"),
        ({"response": "x"}, "missing field 'prompt' (expected prompt/response or messages)"),
        ({"prompt": 3, "response": "x"}, "field 'prompt' must be a string, got int"),
        ({"prompt": "x", "response": None}, "field 'response' must be a string, got NoneType"),
        ({"messages": []}, "field 'messages' must be a non-empty list"),
        ({"messages": "hi"}, "field 'messages' must be a non-empty list"),
        (
            {"messages": [{"role": "bot", "content": "x"}]},
            "messages[0].role='bot'; expected one of system, user, assistant",
        ),
        (
            {"messages": [{"role": "user", "content": "x"}, {"content": "y"}]},
            "messages[1].role=None; expected one of system, user, assistant",
        ),
        (
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0] must be an object with a string 'content'",
        ),
        ({"messages": ["hi"]}, "messages[0] must be an object with a string 'content'"),
        (
            {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]},
            "messages has no assistant turn to learn from",
        ),
    ],
)
def test_check_record_messages(record, message):
    assert check_record(record) == message


def test_check_record_accepts_good_records():
    assert check_record({"prompt": "a", "response": "b"}) is None
    assert check_record({"prompt": "a", "response": "b", "extra": 1}) is None
    assert check_record({"messages": CONVERSATION}) is None


# --- prompt_and_answer ----------------------------------------------------------------------


def test_prompt_and_answer_splits_at_the_last_assistant_turn():
    prompt, answer = prompt_and_answer({"messages": CONVERSATION})
    assert prompt == CONVERSATION[:4]
    assert answer == "general kenobi"


def test_prompt_and_answer_of_prompt_response_record():
    prompt, answer = prompt_and_answer({"prompt": "what is 3+4?", "response": "7"})
    assert prompt == [{"role": "user", "content": "what is 3+4?"}]
    assert answer == "7"


def test_prompt_and_answer_drops_turns_after_the_last_assistant():
    messages = [*CONVERSATION[:3], {"role": "user", "content": "thanks"}]
    prompt, answer = prompt_and_answer({"messages": messages})
    assert prompt == CONVERSATION[:2] and answer == "42"
