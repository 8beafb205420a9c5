"""A trained VLM answering image + prompt instances, one batch per request.

    from serving.vision import VisionPredictor
    predictor = VisionPredictor.load("gs://bucket/run/model")
    predictor.predict([{"image": {"b64": "..."}, "prompt": "what colour is the square?"}])

The model directory is what `python -m trainers.vlm` writes (an HF Llava directory with
`preprocessor_config.json`). An instance is `{"image": IMAGE, "prompt": str}` where IMAGE is
`{"b64": base64 bytes}` or a `gs://` URI read with the server's own credentials. Local paths are
refused: a client must not make the server read its own files. Each image is decoded and resized
exactly as in training, once, when the request is read. Bad instances raise ValueError with a
one-line message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from serving.predictor import Generation, parse_parameters

if TYPE_CHECKING:
    import torch

    from trainers.vlm.images import ImageSpec


@dataclass(frozen=True)
class ImageQuestion:
    pixels: torch.Tensor  # decoded and resized as in training
    prompt: str


def parse_instances(instances: object, spec: ImageSpec) -> list[ImageQuestion]:
    if not isinstance(instances, list) or not instances:
        raise ValueError("instances must be a non-empty list")
    return [_instance(f"instances[{i}]", item, spec) for i, item in enumerate(instances)]


def _instance(where: str, item: object, spec: ImageSpec) -> ImageQuestion:
    if not isinstance(item, dict) or sorted(item) != ["image", "prompt"]:
        raise ValueError(
            f"{where} must be {{'image': {{'b64': ...}} or 'gs://...', 'prompt': str}}"
        )
    if not isinstance(item["prompt"], str) or not item["prompt"].strip():
        raise ValueError(f"{where}.prompt must be a non-empty string")
    return ImageQuestion(
        pixels=_pixels(f"{where}.image", item["image"], spec), prompt=item["prompt"]
    )


def _pixels(where: str, value: object, spec: ImageSpec) -> torch.Tensor:
    from trainers.vlm.images import ImageError, decode, read_image_bytes

    remote = isinstance(value, str) and value.startswith("gs://")
    inline = isinstance(value, dict) and list(value) == ["b64"]
    if not (remote or inline):
        raise ValueError(f"{where} must be {{'b64': base64 image bytes}} or a gs:// URI")
    try:
        return decode(read_image_bytes(value, base_dir="/"), spec)
    except ImageError as err:
        raise ValueError(f"{where}: {err}") from None


class VisionPredictor:
    """A Llava model, its tokenizer and image spec; `num_batches` counts generate calls."""

    def __init__(self, loaded, *, model_dir: str = ""):
        self.loaded = loaded
        self.device = str(loaded.model.device)
        self.model_dir = model_dir
        self.num_batches = 0

    @classmethod
    def load(cls, uri: str, *, device: str | None = None) -> VisionPredictor:
        from trainers.vlm.model import load_trained

        return cls(load_trained(uri, device=device), model_dir=uri)

    def parse_instances(self, instances: object) -> list[ImageQuestion]:
        """Validated instances, each image decoded (once) with the model's image spec."""
        return parse_instances(instances, self.loaded.image)

    def predict(self, instances: object, parameters: object = None) -> list[str]:
        return self.generate(self.parse_instances(instances), parse_parameters(parameters))

    def generate(self, items: list[ImageQuestion], params: Generation) -> list[str]:
        import torch

        from trainers.vlm.evaluate import generate_answers

        loaded = self.loaded
        pixels = torch.stack([item.pixels for item in items])
        self.num_batches += 1
        return generate_answers(
            loaded.model,
            loaded.tokenizer,
            pixels,
            [item.prompt for item in items],
            num_image_tokens=loaded.num_image_tokens,
            max_new_tokens=params.max_new_tokens,
            device=self.device,
            temperature=params.temperature,
            top_p=params.top_p,
        )
