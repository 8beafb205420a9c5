"""A trained causal LM answering prediction instances, one batch per request.

    from serving.predictor import Predictor
    predictor = Predictor.load("gs://bucket/run/model")   # or a local / /gcs/ directory
    predictor.predict(["What is 2 + 3?"], {"max_new_tokens": 8})

The model directory is what `python -m trainers.llm` writes (HF safetensors, tokenizer,
`training_metadata.json`); a LoRA run's `merged/` full weights are preferred when present.
An instance is a string, `{"prompt": str}` or `{"messages": [{"role", "content"}, ...]}`; a
string or prompt is one user turn. Every instance is rendered with the chat template the model
was trained on. Bad instances or parameters raise ValueError with a one-line message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from trainers.lm.chat import ROLES, ensure_chat_template, render_prompt

MAX_NEW_TOKENS_LIMIT = 2048


@dataclass(frozen=True, kw_only=True)
class Generation:
    """Request parameters: greedy by default (temperature 0), so answers are reproducible."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0


def parse_parameters(parameters: object) -> Generation:
    """The request's `parameters` (None or an object) as validated generation settings."""
    if parameters is None:
        return Generation()
    if not isinstance(parameters, dict):
        raise ValueError(f"parameters must be an object, got {_kind(parameters)}")
    known = [f.name for f in fields(Generation)]
    for name in parameters:
        if name not in known:
            raise ValueError(f"parameters.{name} is unknown; allowed: {', '.join(known)}")
    params = Generation(**parameters)
    _check_parameters(params)
    return params


def _check_parameters(params: Generation) -> None:
    n, t, p = params.max_new_tokens, params.temperature, params.top_p
    # bool is an int subclass: `true` must not pass as 1 token.
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_NEW_TOKENS_LIMIT:
        _bad("max_new_tokens", n, f"an integer from 1 to {MAX_NEW_TOKENS_LIMIT}")
    if not _is_number(t) or t < 0:
        _bad("temperature", t, "a number >= 0 (0 = greedy)")
    if not _is_number(p) or not 0 < p <= 1:
        _bad("top_p", p, "a number with 0 < top_p <= 1")


def _is_number(value: object) -> bool:
    # JSON allows NaN/Infinity through Python's parser; neither is a usable setting.
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _bad(name: str, value: object, allowed: str) -> None:
    raise ValueError(f"parameters.{name}={value!r} is invalid: {allowed}")


def parse_instances(instances: object) -> list[list[dict]]:
    """Each instance as a chat conversation (a list of `{"role", "content"}` messages)."""
    if not isinstance(instances, list) or not instances:
        raise ValueError("instances must be a non-empty list")
    return [_conversation(i, instance) for i, instance in enumerate(instances)]


def _conversation(index: int, instance: object) -> list[dict]:
    where = f"instances[{index}]"
    if isinstance(instance, str):
        return [{"role": "user", "content": instance}]
    if not isinstance(instance, dict):
        raise ValueError(
            f"{where} must be a string, {{'prompt': str}} or {{'messages': [...]}}; "
            f"got {_kind(instance)}"
        )
    if list(instance) == ["prompt"]:
        if not isinstance(instance["prompt"], str):
            raise ValueError(f"{where}.prompt must be a string, got {_kind(instance['prompt'])}")
        return [{"role": "user", "content": instance["prompt"]}]
    if list(instance) == ["messages"]:
        return _messages(where, instance["messages"])
    raise ValueError(f"{where} has keys {sorted(instance)}; expected one of 'prompt', 'messages'")


def _messages(where: str, messages: object) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise ValueError(f"{where}.messages must be a non-empty list")
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), str):
            raise ValueError(f"{where}.messages[{i}] must be an object with a string 'content'")
        if m.get("role") not in ROLES:
            raise ValueError(
                f"{where}.messages[{i}].role={m.get('role')!r} is invalid: "
                f"choose one of {', '.join(ROLES)}"
            )
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


class Predictor:
    """A causal LM and its tokenizer; `num_batches` counts generate calls (one per request)."""

    def __init__(self, model, tokenizer, *, device: str, model_dir: str = ""):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.model_dir = model_dir
        self.num_batches = 0
        ensure_chat_template(tokenizer)

    parse_instances = staticmethod(parse_instances)

    @classmethod
    def load(cls, uri: str, *, device: str | None = None) -> Predictor:
        """The model at `uri`: a local, `gs://` or `/gcs/` directory; bf16 on CUDA."""
        from trainers.lm.model import load_trained, trained_model_dir

        model_dir = trained_model_dir(uri)
        model, tokenizer = load_trained(model_dir, device=device)
        return cls(model, tokenizer, device=str(model.device), model_dir=model_dir)

    def predict(self, instances: object, parameters: object = None) -> list[str]:
        """One completion per instance, all generated as one batch."""
        return self.generate(parse_instances(instances), parse_parameters(parameters))

    def generate(self, conversations: list[list[dict]], params: Generation) -> list[str]:
        """Completions of already-validated conversations (see `parse_instances`)."""
        from trainers.lm.generation import generate

        prompts = [render_prompt(self.tokenizer, messages) for messages in conversations]
        self.num_batches += 1
        return generate(
            self.model,
            self.tokenizer,
            prompts,
            max_new_tokens=params.max_new_tokens,
            device=self.device,
            temperature=params.temperature,
            top_p=params.top_p,
        )


def load_predictor(uri: str, *, device: str | None = None):
    """The predictor for the model at `uri`: a VLM (Llava directory) or a causal LM."""
    from trainers.lm.model import local_source
    from trainers.vlm.model import is_vlm_dir

    if is_vlm_dir(local_source(uri)):
        from serving.vision import VisionPredictor

        return VisionPredictor.load(uri, device=device)
    return Predictor.load(uri, device=device)
