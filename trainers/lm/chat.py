"""Instruction records to token examples, with prompt tokens masked out of the loss.

A record is `{"prompt": str, "response": str}` or `{"messages": [{"role", "content"}, ...]}`.
Both are rendered with the tokenizer's chat template; a tokenizer without one gets
DEFAULT_CHAT_TEMPLATE (`<|user|>` / `<|assistant|>` turns, each assistant turn closed by EOS).
"""

from __future__ import annotations

from trainers.common.config import ConfigError
from trainers.common.packing import Example

ROLES = ("system", "user", "assistant")

DEFAULT_CHAT_TEMPLATE = (
    # Newlines are written as expressions: transformers renders templates with trim_blocks.
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>\\n' + m['content'] }}"
    "{% if m['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
TEMPLATE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]


def check_record(record: dict) -> str | None:
    """What is wrong with an instruction record, or None."""
    if "messages" in record:
        return _check_messages(record["messages"])
    for key in ("prompt", "response"):
        if key not in record:
            return f"missing field {key!r} (expected prompt/response or messages)"
        if not isinstance(record[key], str):
            return f"field {key!r} must be a string, got {type(record[key]).__name__}"
    return None


def _check_messages(messages: object) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "field 'messages' must be a non-empty list"
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            return f"messages[{i}] must be an object with a string 'content'"
        if m.get("role") not in ROLES:
            return f"messages[{i}].role={m.get('role')!r}; expected one of {', '.join(ROLES)}"
    if not any(m["role"] == "assistant" for m in messages):
        return "messages has no assistant turn to learn from"
    return None


def to_messages(record: dict) -> list[dict]:
    if "messages" in record:
        return [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
    return [
        {"role": "user", "content": record["prompt"]},
        {"role": "assistant", "content": record["response"]},
    ]


def prompt_and_answer(record: dict) -> tuple[list[dict], str]:
    """The conversation up to the last assistant turn, and that turn's text (for evaluation)."""
    messages = to_messages(record)
    last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
    return messages[:last], messages[last]["content"]


def ensure_chat_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def render_prompt(tokenizer, messages: list[dict]) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def tokenize_record(tokenizer, record: dict, *, mask_prompt: bool = True) -> Example:
    """Token ids of the rendered conversation; assistant turns are the trainable tokens."""
    messages = to_messages(record)
    ids: list[int] = []
    trainable: list[bool] = []
    rendered = ""
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            before = render_prompt(tokenizer, messages[:i]) if i else ""
            _append(tokenizer, _suffix(before, rendered), ids, trainable, not mask_prompt)
            rendered = before
        text = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        _append(
            tokenizer,
            _suffix(text, rendered),
            ids,
            trainable,
            message["role"] == "assistant" or not mask_prompt,
        )
        rendered = text
    return Example(ids, trainable)


def _suffix(text: str, prefix: str) -> str:
    # Templates render conversations incrementally; a template that rewrites earlier turns
    # (e.g. moving a system prompt) cannot be masked by prefix, so it is refused loudly.
    if not text.startswith(prefix):
        raise ConfigError(
            "the chat template does not render conversations incrementally; "
            "set a tokenizer whose template does"
        )
    return text[len(prefix) :]


def _append(tokenizer, text: str, ids: list[int], trainable: list[bool], flag: bool) -> None:
    if text:
        new = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids.extend(new)
        trainable.extend([flag] * len(new))
