"""The debug scenes (each question about one object, its mask exact) and the records reader:
JSONL and Parquet, masks or boxes, one-line errors naming file:line, bad records skipped and
counted on request."""

import base64
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from tests.support.tiny_qwen3_vl import decode_png
from trainers.arr_coc.records import read_scene_records, to_example
from trainers.arr_coc.scenes import (
    BINDING,
    CLUTTER,
    COLOURS,
    DISTRACTOR,
    HARD,
    NORMAL,
    SHAPES,
    WHITE,
    scene_records,
)
from trainers.common.records import DataError


def _pixels(image: Image.Image) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return raw.view(image.height, image.width, -1)


@pytest.mark.parametrize("spec", [NORMAL, HARD, BINDING], ids=["normal", "hard", "binding"])
def test_each_question_is_about_the_masked_object(spec):
    records = scene_records(16, seed=3, spec=spec)
    assert records == scene_records(16, seed=3, spec=spec)
    assert len({(r["image"]["b64"], r["question"]) for r in records}) == 16
    for r in records:
        image, mask = _pixels(decode_png(r["image"])), _pixels(decode_png(r["mask"]))[..., 0] > 0
        colours = {tuple(c) for c in image[mask].tolist()}
        assert len(colours) == 1  # the mask is exactly one object's pixels
        (colour,) = colours
        name = next(n for n, rgb in COLOURS.items() if rgb == colour)
        if r["question"].startswith("what colour"):
            assert r["answer"] == name
        else:
            assert f"the {name} object" in r["question"] and r["answer"] in SHAPES
        clutter = (image == torch.tensor(CLUTTER, dtype=torch.uint8)).all(-1).sum()
        assert (clutter > 0) == (spec.num_clutter > 0)
        distractors = (image == torch.tensor(DISTRACTOR, dtype=torch.uint8)).all(-1).sum()
        assert (distractors > 0) == spec.grey_distractors
        assert (image[~mask] == torch.tensor(WHITE, dtype=torch.uint8)).all(-1).float().mean() > 0.5


def _write_jsonl(path, records) -> None:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))


def test_jsonl_with_masks_boxes_and_paths(tmp_path, tiny_qwen):
    scene = scene_records(1, seed=0)[0]
    decode_png(scene["image"]).save(tmp_path / "scene.png")
    records = [
        scene,
        {
            "image": "scene.png",
            "question": "what is here?",
            "answer": "red",
            "boxes": [[0, 0, 32, 16]],
        },
        {"image": {"b64": scene["image"]["b64"]}, "question": "q?", "answer": "a"},
    ]
    _write_jsonl(tmp_path / "data.jsonl", records)
    located, skipped = read_scene_records(str(tmp_path / "data.jsonl"))
    assert skipped == 0 and [w.rsplit(":", 1)[1] for w, _ in located] == ["1", "2", "3"]
    examples = [to_example(tiny_qwen, r, where=w, base_dir=str(tmp_path)) for w, r in located]
    object_pixels = int((_pixels(decode_png(scene["mask"])) > 0).sum())
    assert object_pixels > 0 and float(examples[0].cell_mask.sum()) * 16 * 16 == object_pixels
    boxed = examples[1].cell_mask
    assert torch.equal(boxed[:1, :2], torch.ones(1, 2)) and boxed.sum() == 2  # 32x16 px = 2 cells
    assert torch.isnan(examples[2].cell_mask).all()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"image": "a.png", "question": "q?"}', "field 'answer' must be a non-empty string"),
        ('{"image": 3, "question": "q?", "answer": "a"}', "image: expected a path"),
        (
            '{"image": "a.png", "question": "q?", "answer": "a", "boxes": [[5, 0, 2, 4]]}',
            "boxes[0]=",
        ),
        (
            '{"image": "a.png", "question": "q?", "answer": "a", "mask": {"url": 1}}',
            "mask: expected",
        ),
        ("{not json", "malformed JSON"),
    ],
)
def test_bad_records_name_file_and_line(tmp_path, line, message):
    good = {"image": "a.png", "question": "q?", "answer": "a"}
    _write_jsonl(tmp_path / "d.jsonl", [good, line])
    with pytest.raises(DataError) as err:
        read_scene_records(str(tmp_path / "d.jsonl"))
    assert str(err.value).startswith(f"{tmp_path / 'd.jsonl'}:2: ") and message in str(err.value)
    located, skipped = read_scene_records(str(tmp_path / "d.jsonl"), on_bad="skip")
    assert (len(located), skipped) == (1, 1)


def test_unreadable_images_and_mismatched_masks_name_the_record(tmp_path, tiny_qwen):
    scene = scene_records(1, seed=0)[0]
    small = io.BytesIO()
    Image.new("L", (10, 10)).save(small, format="PNG")
    cases = [
        ({"image": "missing.png"}, "image 'missing.png'"),
        (
            {"image": {"b64": base64.b64encode(b"not a png").decode()}},
            "image is not a decodable image",
        ),
        (
            {"mask": {"b64": base64.b64encode(small.getvalue()).decode()}},
            "mask is 10x10 but the image is 128x128",
        ),
        ({"boxes": [[100, 100, 140, 120]]}, "boxes[0] reaches past the 128x128 image"),
    ]
    for change, message in cases:
        record = {k: v for k, v in scene.items() if k != "mask"} | change
        with pytest.raises(DataError, match="^d.jsonl:7: ") as err:
            to_example(tiny_qwen, record, where="d.jsonl:7", base_dir=str(tmp_path))
        assert message in str(err.value)


def test_parquet_with_raw_image_bytes(tmp_path, tiny_qwen):
    scene = scene_records(2, seed=5)
    rows = [
        {
            "image": {"bytes": base64.b64decode(r["image"]["b64"])},
            "question": r["question"],
            "answer": r["answer"],
        }
        for r in scene
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    located, _ = read_scene_records(str(tmp_path))
    assert [w.endswith(f"row {i}") for i, (w, _) in enumerate(located, start=1)] == [True, True]
    example = to_example(tiny_qwen, located[0][1], where=located[0][0], base_dir=str(tmp_path))
    assert example.grid_thw.tolist() == [1, 16, 16]
