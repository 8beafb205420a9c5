"""A trained causal LM answering text instances.

    from serving.text import TextPredictor
    predictor = TextPredictor.load("gs://bucket/run/model")   # or a local / /gcs/ directory
    predictor.predict(["What is 2 + 3?"], {"max_new_tokens": 8})

The model directory is what `python -m trainers.llm` writes (HF safetensors, tokenizer,
`training_metadata.json`); a LoRA run's `merged/` full weights are preferred when present.
An instance is a string, `{"prompt": str}` or `{"messages": [{"role", "content"}, ...]}`; a
string or prompt is one user turn. Every instance is rendered with the chat template the model
was trained on and counted in tokens when the request arrives, so a prompt that cannot fit the
model's context with its generation budget is refused (422) before it costs anything.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass

from serving import errors
from serving.errors import RequestError
from serving.limits import (
    Limits,
    check_instances,
    check_prompt_bytes,
    check_prompt_tokens,
    over_limit,
)
from serving.params import Generation, kind, parse_parameters
from trainers.lm.chat import ROLES, ensure_chat_template, render_prompt


@dataclass(frozen=True)
class Prompt:
    text: str  # rendered with the chat template
    num_tokens: int


class TextPredictor:
    """A causal LM and its tokenizer; `num_batches` counts generate calls."""

    parameters = Generation  # what a request's "parameters" may hold: generation settings

    def __init__(self, model, tokenizer, *, device: str, model_dir: str = "", limits=None):
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.model_dir = model_dir
        self.limits = limits or Limits()
        self.num_batches = 0
        ensure_chat_template(tokenizer)
        self.context_length = model.config.max_position_embeddings
        # Request threads count tokens while the batch thread pads and generates: a Rust
        # tokenizer whose padding is being set cannot be read at the same time ("Already
        # borrowed"), so counting has its own copy, never padded.
        self._counter = copy.deepcopy(tokenizer)
        self._counting = threading.Lock()
        self._max_token_bytes = max(len(t.encode("utf-8")) for t in tokenizer.get_vocab())

    @classmethod
    def load(cls, uri: str, *, device: str | None = None, limits=None) -> TextPredictor:
        """The model at `uri`: a local, `gs://` or `/gcs/` directory; bf16 on CUDA."""
        from trainers.lm.model import load_trained, trained_model_dir

        model_dir = trained_model_dir(uri)
        model, tokenizer = load_trained(model_dir, device=device)
        return cls(model, tokenizer, device=str(model.device), model_dir=model_dir, limits=limits)

    def predict(self, instances: object, parameters: object = None) -> list[str]:
        """One completion per instance, all generated as one batch."""
        return self.generate(*self.prepare(instances, parse_parameters(parameters)))

    def prepare(self, instances: object, params: Generation) -> tuple[list[Prompt], Generation]:
        """Validated instances, rendered and counted, and the settings to generate them with;
        RequestError names the first bad instance."""
        items = check_instances(instances, self.limits)
        texts = [self._render(i, x) for i, x in enumerate(items)]
        for i, text in enumerate(texts):
            check_prompt_bytes(
                f"instances[{i}]",
                text,
                max_bytes=self._max_token_bytes,
                context=self.context_length,
            )
        with self._counting:
            ids = self._counter(texts, add_special_tokens=False)["input_ids"]
        for i, row in enumerate(ids):
            check_prompt_tokens(
                f"instances[{i}]",
                len(row),
                params=params,
                context=self.context_length,
            )
        prompts = [Prompt(text, len(row)) for text, row in zip(texts, ids, strict=True)]
        longest = max(p.num_tokens for p in prompts)
        return prompts, params.fitted(longest_prompt=longest, context=self.context_length)

    def generate(self, prompts: list[Prompt], params: Generation) -> list[str]:
        """Completions of prepared prompts, generated as one left-padded batch."""
        from trainers.lm.generation import generate

        self.num_batches += 1
        return generate(
            self.model,
            self.tokenizer,
            [p.text for p in prompts],
            max_new_tokens=params.max_new_tokens,
            device=self.device,
            temperature=params.temperature,
            top_p=params.top_p,
        )

    def _render(self, index: int, instance: object) -> str:
        from jinja2 import TemplateError

        messages = self._conversation(index, instance)
        try:
            return render_prompt(self._counter, messages)
        except TemplateError as err:  # e.g. a template that insists on alternating roles
            raise RequestError(f"instances[{index}]: the chat template refused it: {err}") from None

    def _conversation(self, index: int, instance: object) -> list[dict]:
        where = f"instances[{index}]"
        if isinstance(instance, str):
            return [{"role": "user", "content": instance}]
        if not isinstance(instance, dict):
            raise RequestError(
                f"{where} must be a string, {{'prompt': str}} or {{'messages': [...]}}; "
                f"got {kind(instance)}"
            )
        if list(instance) == ["prompt"]:
            if not isinstance(instance["prompt"], str):
                raise RequestError(
                    f"{where}.prompt must be a string, got {kind(instance['prompt'])}"
                )
            return [{"role": "user", "content": instance["prompt"]}]
        if list(instance) == ["messages"]:
            return self._messages(where, instance["messages"])
        keys = sorted(map(str, instance))[:5]
        raise RequestError(f"{where} has keys {keys}; expected one of 'prompt', 'messages'")

    def _messages(self, where: str, messages: object) -> list[dict]:
        if not isinstance(messages, list) or not messages:
            raise RequestError(f"{where}.messages must be a non-empty list")
        if len(messages) > self.limits.max_messages:
            what = f"{where}.messages: {len(messages)} messages"
            raise over_limit(what, self.limits, "max_messages", reason=errors.TOO_MANY_MESSAGES)
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("content"), str):
                raise RequestError(
                    f"{where}.messages[{i}] must be an object with a string 'content'"
                )
            if m.get("role") not in ROLES:
                raise RequestError(
                    f"{where}.messages[{i}].role={_short(m.get('role'))} is invalid: "
                    f"choose one of {', '.join(ROLES)}"
                )
        return [{"role": m["role"], "content": m["content"]} for m in messages]


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
