"""ARR-COC records: `{image, question, answer}` with the referred object's `mask` or `boxes`.

    located, skipped = read_scene_records("gs://b/vqa.jsonl")       # [(where, record)], checked
    example = to_example(base, record, where=where, base_dir="gs://b")

JSONL or Parquet, a file or a directory of them, local, gs:// or /gcs/. `image` and `mask` are a
path (relative to the records file), a gs:// or /gcs/ URI, or inline `{"b64": ...}` /
`{"bytes": ...}` (raw in Parquet, base64 in JSON) / `{"path": ...}`. A mask is an image of the
same size whose non-zero pixels are the object; `boxes` is a list of `[x0, y0, x1, y1]` pixel
boxes (x1, y1 exclusive) that together are the object. Either is optional (stages 2 and 3 need
neither). A bad record stops reading with one line naming `file:line` and what is wrong, or is
skipped and counted with `on_bad="skip"`; an image or mask that does not decode stops with
`file:line` when it is first read.
"""

from __future__ import annotations

import base64
import binascii
import io
import os

from PIL import Image, ImageDraw

from trainers.arr_coc.inputs import Example, encode
from trainers.arr_coc.qwen import Base
from trainers.common import storage
from trainers.common.records import DataError, read_located_records

_IMAGE_FORMS = "a path, a gs:// URI, or {'b64'|'bytes'|'path': ...}"
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def check_record(record: dict) -> str | None:
    """What is wrong with a record's structure, or None; nothing is read."""
    for key in ("question", "answer"):
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"field {key!r} must be a non-empty string"
    for key in ("image", "mask"):
        if key in record and (problem := _check_value(record[key], key)):
            return problem
    if "image" not in record:
        return "missing field 'image'"
    if "boxes" in record:
        return _check_boxes(record["boxes"])
    return None


def _check_value(value, key: str) -> str | None:
    if isinstance(value, str):
        return None if value else f"{key}: empty path"
    if not isinstance(value, dict):
        return f"{key}: expected {_IMAGE_FORMS}, got {type(value).__name__}"
    for form, kinds in (("b64", str), ("bytes", bytes | bytearray | str), ("path", str)):
        if value.get(form) is not None:
            ok = isinstance(value[form], kinds) and len(value[form]) > 0
            return None if ok else f"{key}.{form}: expected a non-empty {form} value"
    return f"{key}: expected {_IMAGE_FORMS}, got a dict with keys {sorted(value)}"


def _check_boxes(boxes) -> str | None:
    if not isinstance(boxes, list) or not boxes:
        return "field 'boxes' must be a non-empty list of [x0, y0, x1, y1]"
    for i, box in enumerate(boxes):
        numbers = isinstance(box, list) and all(isinstance(v, int | float) for v in box)
        if not numbers or len(box) != 4:
            return f"boxes[{i}] must be [x0, y0, x1, y1] numbers, got {box!r}"
        if not (0 <= box[0] < box[2] and 0 <= box[1] < box[3]):
            return f"boxes[{i}]={box!r} is invalid: need 0 <= x0 < x1 and 0 <= y0 < y1"
    return None


def read_scene_records(uri: str, *, on_bad: str = "error") -> tuple[list[tuple[str, dict]], int]:
    """Every valid record of `uri` with where it is, and how many bad ones were skipped."""
    return read_located_records(uri, validate=check_record, on_bad=on_bad)


def load_images(
    record: dict, *, where: str, base_dir: str
) -> tuple[Image.Image, Image.Image | None]:
    """(RGB image, L mask or None): decoded, the mask checked against the image's size."""
    image = _decode(record["image"], "image", where=where, base_dir=base_dir).convert("RGB")
    mask = None
    if "mask" in record:
        mask = _decode(record["mask"], "mask", where=where, base_dir=base_dir).convert("L")
        if mask.size != image.size:
            (mw, mh), (iw, ih) = mask.size, image.size
            raise DataError(f"{where}: mask is {mw}x{mh} but the image is {iw}x{ih}")
    elif "boxes" in record:
        mask = boxes_mask(record["boxes"], size=image.size, where=where)
    return image, mask


def boxes_mask(boxes: list, *, size: tuple[int, int], where: str) -> Image.Image:
    """The union of pixel boxes as a mask; a box outside the image is an error."""
    width, height = size
    mask = Image.new("L", size, 0)
    draw = ImageDraw.Draw(mask)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        if x1 > width or y1 > height:
            raise DataError(f"{where}: boxes[{i}] reaches past the {width}x{height} image")
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=255)  # PIL's corners are inclusive
    return mask


def _decode(value, key: str, *, where: str, base_dir: str) -> Image.Image:
    data = read_bytes(value, key, where=where, base_dir=base_dir)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.copy()
    except _DECODE_ERRORS as err:
        # PIL's own message for unknown bytes ends in the repr of a BytesIO, an address.
        unknown = isinstance(err, Image.UnidentifiedImageError)
        reason = "cannot identify image file" if unknown else str(err)
        raise DataError(f"{where}: {key} is not a decodable image ({reason})") from None


def read_bytes(value, key: str, *, where: str, base_dir: str) -> bytes:
    if isinstance(value, dict) and value.get("path") is None:
        data = value.get("b64", value.get("bytes"))
        if isinstance(data, bytes | bytearray):
            return bytes(data)
        try:
            return base64.b64decode(data, validate=True)
        except binascii.Error:
            raise DataError(f"{where}: {key} bytes are not valid base64") from None
    path = value["path"] if isinstance(value, dict) else value
    uri = path if "://" in path or os.path.isabs(path) else storage.join(base_dir, path)
    try:
        with storage.open_uri(storage.normalize(uri), "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(f"{where}: {key} {path!r} ({uri}): no such file") from None


def to_example(base: Base, record: dict, *, where: str, base_dir: str) -> Example:
    image, mask = load_images(record, where=where, base_dir=base_dir)
    return encode(
        base, image=image, question=record["question"], answer=record["answer"], mask=mask
    )
