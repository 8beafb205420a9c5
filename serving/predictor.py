"""What the server needs from a model: the `Predictor` protocol, and the loader that picks the
language-model or the vision-language predictor from the model directory.

    from serving.predictor import load_predictor
    predictor = load_predictor("gs://bucket/run/model")      # TextPredictor or VisionPredictor
    params = parse_parameters({"max_new_tokens": 8})
    items, params = predictor.prepare(instances, params)     # validated, bounded, counted
    predictor.generate(items, params)                        # one batch; one answer per item

`prepare` runs on request threads, several at once; `generate` runs on the one batching
thread, with the items of several requests that share `params`. Both predictors stand on
`serving.params` and `serving.limits`, never on each other.
"""

from __future__ import annotations

from typing import Protocol

from serving.limits import Limits
from serving.params import Generation
from serving.text import TextPredictor
from serving.vision import VisionPredictor


class Predictor(Protocol):
    model_dir: str
    context_length: int  # tokens: prompt and generated together
    num_batches: int

    def prepare(self, instances: object, params: Generation) -> tuple[list, Generation]:
        """Each instance checked and made ready to generate from, and `params` with the
        default `max_new_tokens` fitted to the context; RequestError otherwise."""
        ...

    def generate(self, items: list, params: Generation) -> list[str]:
        """One prediction per item, generated as one batch."""
        ...

    def predict(self, instances: object, parameters: object = None) -> list[str]:
        """`prepare` and `generate` in one call (in-process use, tests)."""
        ...


def load_predictor(
    uri: str, *, device: str | None = None, limits: Limits | None = None
) -> Predictor:
    """The predictor for the model at `uri`: a VLM (Llava directory) or a causal LM."""
    from trainers.lm.model import local_source
    from trainers.vlm.model import is_vlm_dir

    predictor = VisionPredictor if is_vlm_dir(local_source(uri)) else TextPredictor
    return predictor.load(uri, device=device, limits=limits)
