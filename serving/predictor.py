"""What the server needs from a model: the `Predictor` protocol, and the loader that picks the
language-model, the vision-language or the ARR-COC predictor from the model directory.

    from serving.predictor import load_predictor
    predictor = load_predictor("gs://bucket/run/model")      # TextPredictor, VisionPredictor, ...
    params = parse_parameters({"max_new_tokens": 8}, schema=predictor.parameters)
    items, params = predictor.prepare(instances, params)     # validated, bounded, counted
    predictor.generate(items, params)                        # one batch; one answer per item

`prepare` runs on request threads, several at once; `generate` runs on the one batching
thread, with the items of several requests that share `params`. A prediction is what the
server returns for an instance as JSON: a string (text and vision) or an object (ARR-COC: the
answer and the visual tokens it kept). The predictors stand on `serving.params`,
`serving.limits` and `serving.images`, never on each other.
"""

from __future__ import annotations

from typing import Protocol

from serving.arr_coc import ArrCocPredictor
from serving.limits import Limits
from serving.params import Generation
from serving.text import TextPredictor
from serving.vision import VisionPredictor

Prediction = str | dict


class Predictor(Protocol):
    model_dir: str
    context_length: int  # tokens: prompt and generated together
    num_batches: int
    parameters: type[Generation]  # what a request's "parameters" may hold

    def prepare(self, instances: object, params: Generation) -> tuple[list, Generation]:
        """Each instance checked and made ready to generate from, and `params` with the
        default `max_new_tokens` fitted to the context; RequestError otherwise."""
        ...

    def generate(self, items: list, params: Generation) -> list[Prediction]:
        """One prediction per item, generated as one batch."""
        ...

    def predict(self, instances: object, parameters: object = None) -> list[Prediction]:
        """`prepare` and `generate` in one call (in-process use, tests)."""
        ...


def load_predictor(
    uri: str, *, device: str | None = None, limits: Limits | None = None
) -> Predictor:
    """The predictor for the model at `uri`: ARR-COC, a VLM (Llava directory) or a causal LM."""
    from trainers.arr_coc.saved import is_arr_coc_dir
    from trainers.lm.model import local_source
    from trainers.vlm.model import is_vlm_dir

    source = local_source(uri)
    if is_arr_coc_dir(source):
        predictor = ArrCocPredictor
    else:
        predictor = VisionPredictor if is_vlm_dir(source) else TextPredictor
    return predictor.load(uri, device=device, limits=limits)
