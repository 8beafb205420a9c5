"""A trained VLM answering image + prompt instances.

    from serving.vision import VisionPredictor
    predictor = VisionPredictor.load("gs://bucket/run/model")
    predictor.predict([{"image": {"b64": "..."}, "prompt": "what colour is the square?"}])

The model directory is what `python -m trainers.vlm` writes (an HF Llava directory with
`preprocessor_config.json`). An instance is `{"image": IMAGE, "prompt": str}` where IMAGE is
`{"b64": base64 bytes}` or a `gs://` URI (`serving.images` reads and bounds it). Each image is
decoded and resized exactly as in training, once, when the request is read; every prompt is
counted in tokens (its image placeholders included) against the language model's context.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from serving.errors import RequestError
from serving.images import EXPECTED, ImageReader
from serving.limits import Limits, check_instances, check_prompt_bytes, check_prompt_tokens
from serving.params import Generation, parse_parameters

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageQuestion:
    pixels: torch.Tensor  # decoded and resized as in training
    prompt: str
    num_tokens: int  # of the generation prompt, image placeholders included


class VisionPredictor:
    """A Llava model, its tokenizer and image spec; `num_batches` counts generate calls."""

    parameters = Generation  # what a request's "parameters" may hold: generation settings

    def __init__(self, loaded, *, model_dir: str = "", limits=None):
        self.loaded = loaded
        self.device = str(loaded.model.device)
        self.model_dir = model_dir
        self.limits = limits or Limits()
        self.num_batches = 0
        self.context_length = loaded.model.config.text_config.max_position_embeddings
        self._images = ImageReader(self.limits)
        # Its own copy for request threads, as in serving.text.
        self._counter = copy.deepcopy(loaded.tokenizer)
        self._counting = threading.Lock()
        self._max_token_bytes = max(len(t.encode("utf-8")) for t in self._counter.get_vocab())

    @classmethod
    def load(cls, uri: str, *, device: str | None = None, limits=None) -> VisionPredictor:
        from trainers.vlm.model import load_trained

        return cls(load_trained(uri, device=device), model_dir=uri, limits=limits)

    def predict(self, instances: object, parameters: object = None) -> list[str]:
        return self.generate(*self.prepare(instances, parse_parameters(parameters)))

    def prepare(
        self, instances: object, params: Generation
    ) -> tuple[list[ImageQuestion], Generation]:
        """Validated instances (every prompt counted first, cheap; then every image decoded)
        and the settings to generate them with."""
        items = check_instances(instances, self.limits)
        counts = [self._count(f"instances[{i}]", item, params) for i, item in enumerate(items)]
        spec = self.loaded.image
        fitted = params.fitted(longest_prompt=max(counts), context=self.context_length)
        return [
            ImageQuestion(
                pixels=self._images.pixels(f"instances[{i}].image", item["image"], spec),
                prompt=item["prompt"],
                num_tokens=n,
            )
            for i, (item, n) in enumerate(zip(items, counts, strict=True))
        ], fitted

    def generate(self, items: list[ImageQuestion], params: Generation) -> list[str]:
        import torch

        from trainers.vlm.evaluate import generate_answers

        loaded = self.loaded
        self.num_batches += 1
        return generate_answers(
            loaded.model,
            loaded.tokenizer,
            torch.stack([item.pixels for item in items]),
            [item.prompt for item in items],
            num_image_tokens=loaded.num_image_tokens,
            max_new_tokens=params.max_new_tokens,
            device=self.device,
            temperature=params.temperature,
            top_p=params.top_p,
        )

    def _count(self, where: str, item: object, params: Generation) -> int:
        from trainers.vlm import examples

        if not isinstance(item, dict) or sorted(item) != ["image", "prompt"]:
            raise RequestError(f"{where} must be {{'image': ..., 'prompt': str}}; image {EXPECTED}")
        prompt = item["prompt"]
        if not isinstance(prompt, str) or not prompt.strip():
            raise RequestError(f"{where}.prompt must be a non-empty string")
        check_prompt_bytes(
            f"{where}.prompt", prompt, max_bytes=self._max_token_bytes, context=self.context_length
        )
        with self._counting:
            num_tokens = len(
                examples.prompt_ids(
                    self._counter, prompt, num_image_tokens=self.loaded.num_image_tokens
                )
            )
        check_prompt_tokens(where, num_tokens, params=params, context=self.context_length)
        return num_tokens
