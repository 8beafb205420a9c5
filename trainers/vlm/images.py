"""A record's "image" value to normalised pixels: read the bytes, decode, resize, normalise.

    spec = ImageSpec(size=224, mean=SIGLIP_MEAN, std=SIGLIP_STD)
    pixels = load_pixels("images/cat.png", base_dir="gs://b/data", spec=spec)  # [3, 224, 224]

An image value is a path (absolute, or relative to `base_dir`, the records file's directory),
a `gs://` or `/gcs/` URI, or a dict: `{"bytes": bytes | base64 str}`, `{"b64": str}` (the
serving form) or `{"path": str}` (Hugging Face datasets; "bytes" may be None). Anything wrong
with one raises `ImageError`, a one-line `ValueError` saying what. The functions are pure and
module-level so DataLoader workers can pickle them; only PIL is imported up front and torch
when pixels are made, so rendering and reading images (the pipeline's sample instances, the
compile step) need no torch.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from trainers.common import storage
from trainers.common.config import ConfigError

if TYPE_CHECKING:
    import torch

SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BICUBIC = 3  # PIL's and Hugging Face's code for bicubic resampling

_EXPECTED = "expected a path, a gs:// URI, or {'bytes'|'b64'|'path': ...}"
# What PIL raises for bytes it cannot decode; several plugins use SyntaxError or EOFError.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


class ImageError(ValueError):
    """An image value that cannot become pixels; the message is one line saying why."""


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """How the vision tower wants its pixels: a square side and per-channel mean/std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise ConfigError(f"image size={self.size!r} is invalid: must be a positive integer")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if len(value) != 3:
                raise ConfigError(f"image {name}={value!r} is invalid: needs one value per RGB")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        if min(self.std) <= 0:
            raise ConfigError(f"image std={self.std!r} is invalid: every value must be > 0")

    def to_dict(self) -> dict:
        """The Hugging Face image-processor keys (`preprocessor_config.json`) for this spec."""
        return {
            "size": {"height": self.size, "width": self.size},
            "image_mean": list(self.mean),
            "image_std": list(self.std),
            "do_resize": True,
            "do_normalize": True,
            "do_rescale": True,
            "rescale_factor": 1 / 255,
            "resample": BICUBIC,
        }

    @classmethod
    def from_dict(cls, d: dict) -> ImageSpec:
        """Read an image-processor config: SigLIP's {height, width}, CLIP's shortest_edge and
        crop_size (the crop is what the model sees), or a plain int size."""
        missing = [k for k in ("image_mean", "image_std") if k not in d]
        if missing:
            raise ConfigError(f"image processor config: missing {missing[0]!r}")
        size = _side(d["crop_size"] if "crop_size" in d else d.get("size"))
        return cls(size=size, mean=tuple(d["image_mean"]), std=tuple(d["image_std"]))


def _side(size: Any) -> int:
    if isinstance(size, int):
        return size
    if isinstance(size, dict) and "height" in size:
        if size["height"] != size.get("width", size["height"]):
            raise ConfigError(f"image processor size={size!r} is invalid: only square images")
        return size["height"]
    if isinstance(size, dict) and "shortest_edge" in size:
        return size["shortest_edge"]
    raise ConfigError(f"image processor size={size!r} is invalid: expected an int or a dict")


def check_image_value(value: Any) -> str | None:
    """What is wrong with a record's "image" value, or None; structure only, nothing is read."""
    if isinstance(value, str):
        return None if value else "image: empty path"
    if not isinstance(value, dict):
        return f"image: {_EXPECTED}, got {type(value).__name__}"
    if value.get("bytes") is not None:
        ok = isinstance(value["bytes"], bytes | bytearray | str)
        got = type(value["bytes"]).__name__
        return None if ok else f"image.bytes: expected bytes or a base64 str, got {got}"
    if "b64" in value:
        return None if isinstance(value["b64"], str) else "image.b64: expected a base64 str"
    if "path" in value:
        path = value["path"]
        return None if isinstance(path, str) and path else "image.path: expected a non-empty str"
    return f"image: {_EXPECTED}, got a dict with keys {sorted(value)}"


def read_image_bytes(value: Any, *, base_dir: str) -> bytes:
    """The encoded image bytes a value names: inline, or read from a local or gs:// path."""
    problem = check_image_value(value)
    if problem:
        raise ImageError(problem)
    if isinstance(value, str):
        return _read_path(value, base_dir=base_dir)
    if value.get("bytes") is not None:
        data = value["bytes"]
        return bytes(data) if isinstance(data, bytes | bytearray) else _b64decode(data)
    if "b64" in value:
        return _b64decode(value["b64"])
    return _read_path(value["path"], base_dir=base_dir)


def _b64decode(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as err:
        raise ImageError(f"image bytes are not valid base64 ({err})") from None


def resolve_path(path: str, *, base_dir: str) -> str:
    """Where `path` points: URIs and absolute paths as they are, others under `base_dir`."""
    if "://" in path or path.startswith(storage.FUSE_ROOT) or os.path.isabs(path):
        return storage.normalize(path)
    return storage.join(base_dir, path)


def _read_path(path: str, *, base_dir: str) -> bytes:
    uri = resolve_path(path, base_dir=base_dir)
    where = f"image {path!r}" + ("" if uri == path else f" ({uri})")
    try:
        with storage.open_uri(uri, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise ImageError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{where}: is a directory, not an image") from None


def _open_rgb(data: bytes) -> Image.Image:
    """Decode fully (so a truncated file fails here, not in a later resize) and flatten to RGB."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if image.mode == "RGB":
                return image.copy()
            # As transformers' convert_rgb does: transparency is composited onto white.
            rgba = image.convert("RGBA")
    except _DECODE_ERRORS as err:
        # PIL's own message would end in the repr of our BytesIO, an address that varies.
        unknown = isinstance(err, Image.UnidentifiedImageError)
        reason = "cannot identify image file" if unknown else str(err)
        raise ImageError(f"image bytes are not a decodable image ({reason})") from None
    background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def verify(data: bytes) -> None:
    """Raise ImageError unless `data` decodes completely as an image."""
    _open_rgb(data)


def decode(data: bytes, spec: ImageSpec) -> torch.Tensor:
    """Encoded image bytes to a float32 [3, size, size] tensor, rescaled to [0, 1], normalised."""
    import torch

    image = _open_rgb(data).resize((spec.size, spec.size), Image.Resampling.BICUBIC)
    # bytearray: torch.frombuffer warns about (and may not write through) read-only buffers.
    raw = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    pixels = raw.view(spec.size, spec.size, 3).permute(2, 0, 1).float().div_(255)
    mean = torch.tensor(spec.mean).view(3, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1)
    return ((pixels - mean) / std).contiguous()


def load_pixels(value: Any, *, base_dir: str, spec: ImageSpec) -> torch.Tensor:
    """A record's image value straight to normalised pixels."""
    return decode(read_image_bytes(value, base_dir=base_dir), spec)


def to_pil(data: bytes) -> Image.Image:
    """Encoded bytes to an RGB PIL image at its own size (for W&B tables and previews)."""
    return _open_rgb(data)


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
