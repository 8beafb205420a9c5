"""A trained ARR-COC model answering image + question instances under a visual-token budget,
and naming the cells of the image it kept.

    from serving.arr_coc import ArrCocPredictor
    predictor = ArrCocPredictor.load("gs://bucket/run/model")    # what trainers.arr_coc saves
    predictor.predict([{"image": {"b64": "..."}, "prompt": "what colour is the triangle?"}],
                      {"budget": 0.25, "max_new_tokens": 8})
    # [{"answer": "red", "kept_cells": [[2, 3], [2, 4], ...], "grid": [8, 8],
    #   "visual_tokens": {"kept": 16, "total": 64}}]

The budget is a request parameter: `budget`, the fraction of each image's visual tokens in
(0, 1], or `tokens`, a whole number of them (at most all); an instance may carry its own
`budget` or `tokens`, which wins over the request's. Without either, the model's own (the
`relevance.budget` it was trained with). A cell is one merged visual token, `[row, col]` on the
image's `grid` of them (`trainers.arr_coc.overlay`).

On the request thread each image is read and bounded by `serving.images` (the limits of
`serving.limits`), then made into Qwen3-VL inputs exactly as in training
(`trainers.arr_coc.inputs.encode`); on the batching thread the relevance scores pick each
image's top K cells and the LM answers over the kept tokens (`serving.arr_coc_decode`).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from serving.errors import RequestError
from serving.images import EXPECTED, ImageReader
from serving.limits import Limits, check_instances, check_prompt_bytes, check_prompt_tokens
from serving.params import Generation, bad_value, is_number, kind, parse_parameters

if TYPE_CHECKING:
    from trainers.arr_coc.inputs import Example

BUDGET_KEYS = ("budget", "tokens")
INSTANCE_KEYS = ("image", "prompt", *BUDGET_KEYS)
FRACTION = "a fraction of the image's visual tokens in (0, 1]; a count goes in 'tokens'"
COUNT = "a whole number of visual tokens, at least 1"


@dataclass(frozen=True, kw_only=True)
class Budgeted(Generation):
    """Generation settings and the request's visual-token budget (at most one of the two)."""

    budget: float | None = None
    tokens: int | None = None

    def check(self) -> None:
        super().check()
        check_budget("parameters", budget=self.budget, tokens=self.tokens)


def check_budget(where: str, *, budget: object, tokens: object) -> None:
    """A RequestError (400) naming `where` unless the budget is one valid fraction or count."""
    if budget is not None and tokens is not None:
        raise RequestError(f"{where}: give 'budget' (a fraction) or 'tokens' (a count), not both")
    if budget is not None and not (is_number(budget) and 0 < budget <= 1):
        bad_value("budget", budget, FRACTION, where=where)
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int)):
        bad_value("tokens", tokens, COUNT, where=where)
    if tokens is not None and tokens < 1:
        bad_value("tokens", tokens, COUNT, where=where)


@dataclass(frozen=True)
class Question:
    example: Example  # the prompt's inputs (image and question), without an answer
    grid: tuple[int, int]  # the image's merged-token rows and columns
    num_keep: int  # visual tokens the LM gets

    @property
    def num_tokens(self) -> int:
        return len(self.example.input_ids)


class ArrCocPredictor:
    """An ArrCoc model and its base's tokenizer and image processor; `num_batches` counts
    generate calls."""

    parameters = Budgeted  # what a request's "parameters" may hold

    def __init__(self, model, base, *, model_dir: str = "", limits=None):
        self.model = model.eval()
        self.base = base
        self.device = str(next(model.parameters()).device)
        self.model_dir = model_dir
        self.limits = limits or Limits()
        self.num_batches = 0
        self.context_length = base.model.config.text_config.max_position_embeddings
        self._images = ImageReader(self.limits)
        # Request threads encode with their own tokenizer, as in serving.text.
        self._encoder = dataclasses.replace(base, tokenizer=copy.deepcopy(base.tokenizer))
        self._encoding = threading.Lock()
        vocab = self._encoder.tokenizer.get_vocab()
        self._max_token_bytes = max(len(t.encode("utf-8")) for t in vocab)
        self._specials = tuple(self._encoder.tokenizer.all_special_tokens)

    @classmethod
    def load(cls, uri: str, *, device: str | None = None, limits=None) -> ArrCocPredictor:
        """The model `trainers.arr_coc.saved` wrote at `uri` (local, gs:// or /gcs/)."""
        from trainers.arr_coc.saved import load

        model, base, _ = load(uri, device=device)
        return cls(model, base, model_dir=uri, limits=limits)

    def predict(self, instances: object, parameters: object = None) -> list[dict]:
        params = parse_parameters(parameters, schema=Budgeted)
        return self.generate(*self.prepare(instances, params))

    def prepare(self, instances: object, params: Budgeted) -> tuple[list[Question], Budgeted]:
        """Validated instances (every prompt checked first, cheap; then every image read and
        encoded), each with its number of tokens to keep, and the settings to generate with:
        the budgets are in the questions, so requests with different budgets share batches."""
        items = check_instances(instances, self.limits)
        for i, item in enumerate(items):
            self._check(f"instances[{i}]", item)
        questions = [
            self._question(f"instances[{i}]", item, params) for i, item in enumerate(items)
        ]
        for i, question in enumerate(questions):
            where = f"instances[{i}]"
            check_prompt_tokens(
                where, question.num_tokens, params=params, context=self.context_length
            )
        longest = max(q.num_tokens for q in questions)
        fitted = params.fitted(longest_prompt=longest, context=self.context_length)
        return questions, dataclasses.replace(fitted, budget=None, tokens=None)

    def generate(self, items: list[Question], params: Generation) -> list[dict]:
        from serving.arr_coc_decode import answer

        self.num_batches += 1
        answers, kept = answer(
            self.model,
            [q.example for q in items],
            num_keep=[q.num_keep for q in items],
            tokenizer=self.base.tokenizer,
            params=params,
            device=self.device,
        )
        return [prediction(q, a, k) for q, a, k in zip(items, answers, kept, strict=True)]

    def _check(self, where: str, item: object) -> None:
        if not (isinstance(item, dict) and {"image", "prompt"} <= set(item) <= set(INSTANCE_KEYS)):
            raise RequestError(
                f"{where} must be {{'image': ..., 'prompt': str}}, optionally with 'budget' or "
                f"'tokens'; got {_keys(item)}; image {EXPECTED}"
            )
        prompt = item["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestError(f"{where}.prompt must be a non-empty string")
        check_prompt_bytes(
            f"{where}.prompt", prompt, max_bytes=self._max_token_bytes, context=self.context_length
        )
        special = next((s for s in self._specials if s in prompt), None)
        if special is not None:  # it would be read as the template's own token
            raise RequestError(f"{where}.prompt holds the special token {special!r}")
        check_budget(where, budget=item.get("budget"), tokens=item.get("tokens"))

    def _question(self, where: str, item: dict, params: Budgeted) -> Question:
        example = self._images.decoded(
            f"{where}.image", item["image"], lambda data: self._encode(data, item["prompt"])
        )
        merge = self.base.image_processor.merge_size
        grid = (int(example.grid_thw[1]) // merge, int(example.grid_thw[2]) // merge)
        own = any(key in item for key in BUDGET_KEYS)
        budget, tokens = (
            (item.get("budget"), item.get("tokens")) if own else (params.budget, params.tokens)
        )
        return Question(
            example, grid, self._num_keep(grid[0] * grid[1], budget=budget, tokens=tokens)
        )

    def _num_keep(self, num_cells: int, *, budget: float | None, tokens: int | None) -> int:
        from trainers.arr_coc.allocation import num_keep

        if tokens is not None:
            return min(num_cells, tokens)
        # A fraction of 1 means all; the model's own budget may also be a count (> 1).
        return num_keep(num_cells, self.model.cfg.budget if budget is None else budget)

    def _encode(self, data: bytes, prompt: str) -> Example:
        """The prompt's inputs; an image the processor cannot take is an ImageError (400)."""
        from trainers.arr_coc.inputs import encode
        from trainers.common.packing import IGNORE
        from trainers.vlm.images import ImageError, to_pil

        image = to_pil(data)
        with self._encoding:
            try:
                example = encode(self._encoder, image=image, question=prompt, answer="")
            except ValueError as err:  # e.g. an aspect ratio Qwen's resize refuses
                raise ImageError(f"the image cannot be encoded: {err}") from None
        n = example.labels.count(IGNORE)  # the answer is the only labelled part
        return dataclasses.replace(
            example,
            input_ids=example.input_ids[:n],
            labels=example.labels[:n],
            mm_token_type_ids=example.mm_token_type_ids[:n],
        )


def prediction(question: Question, answer: str, kept) -> dict:
    """What the server returns for one instance."""
    from trainers.arr_coc.overlay import kept_cells

    rows, cols = question.grid
    return {
        "answer": answer,
        "kept_cells": kept_cells(kept, grid_width=cols),
        "grid": [rows, cols],
        "visual_tokens": {"kept": len(kept), "total": rows * cols},
    }


def _keys(item: object) -> str:
    if isinstance(item, dict):
        return f"keys {sorted(map(str, item))[:6]}"
    return kind(item)
