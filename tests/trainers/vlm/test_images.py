"""Image values to pixels: every source form, decoding of odd modes and bad bytes, the spec."""

import base64
import io
import os

import pytest
import torch
from PIL import Image

from trainers.common import storage
from trainers.vlm.images import (
    CLIP_MEAN,
    CLIP_STD,
    SIGLIP_MEAN,
    SIGLIP_STD,
    ImageError,
    ImageSpec,
    check_image_value,
    decode,
    load_pixels,
    png_bytes,
    read_image_bytes,
    to_pil,
)

SPEC = ImageSpec(size=8, mean=SIGLIP_MEAN, std=SIGLIP_STD)


def _picture(mode: str = "RGB", size: tuple[int, int] = (12, 10)) -> Image.Image:
    """An image whose pixels differ everywhere, so a mix-up of rows, channels or files shows."""
    image = Image.new("RGB", size)
    image.putdata(
        [
            (x * 20 % 256, y * 25 % 256, (x * y) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    return image.convert(mode)


PNG = png_bytes(_picture())


@pytest.fixture
def image_dir(tmp_path):
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.png").write_bytes(PNG)
    return tmp_path


def test_every_local_and_inline_form_gives_the_same_pixels(image_dir):
    b64 = base64.b64encode(PNG).decode()
    absolute = str(image_dir / "imgs" / "a.png")
    forms = [
        {"bytes": PNG},
        {"bytes": bytearray(PNG), "path": "ignored.png"},
        {"bytes": b64},
        {"b64": b64},
        {"bytes": None, "path": "imgs/a.png"},
        "imgs/a.png",
        absolute,
        {"path": absolute},
    ]
    expected = decode(PNG, SPEC)
    assert expected.shape == (3, 8, 8) and expected.std() > 0.1  # not a blank image
    for value in forms:
        assert check_image_value(value) is None, value
        pixels = load_pixels(value, base_dir=str(image_dir), spec=SPEC)
        assert torch.equal(pixels, expected), value
    # A relative path is resolved against base_dir, not the working directory.
    with pytest.raises(ImageError, match="no such file"):
        load_pixels("imgs/a.png", base_dir=str(image_dir / "elsewhere"), spec=SPEC)


def test_gcs_uris_and_relative_paths_under_a_bucket(gcs_bucket):
    with storage.open_uri(f"gs://{gcs_bucket}/data/imgs/a.png", "wb") as f:
        f.write(PNG)
    expected = decode(PNG, SPEC)
    cases = [
        (f"gs://{gcs_bucket}/data/imgs/a.png", "/unused"),
        ("imgs/a.png", f"gs://{gcs_bucket}/data"),
        ({"path": "imgs/a.png"}, f"gs://{gcs_bucket}/data"),
    ]
    if not os.path.isdir(storage.FUSE_ROOT):  # without the mount, /gcs/ is read through the API
        cases += [
            (f"/gcs/{gcs_bucket}/data/imgs/a.png", "/unused"),
            ("imgs/a.png", f"/gcs/{gcs_bucket}/data"),
        ]
    for value, base_dir in cases:
        assert torch.equal(load_pixels(value, base_dir=base_dir, spec=SPEC), expected), value
    with pytest.raises(
        ImageError, match=rf"'imgs/b.png' \(gs://{gcs_bucket}/data/imgs/b.png\): no such file"
    ):
        read_image_bytes("imgs/b.png", base_dir=f"gs://{gcs_bucket}/data")


def test_missing_file_names_the_path_as_written_and_resolved(tmp_path):
    with pytest.raises(ImageError) as err:
        read_image_bytes("cat.png", base_dir=str(tmp_path))
    assert str(err.value) == f"image 'cat.png' ({tmp_path / 'cat.png'}): no such file"
    with pytest.raises(ImageError, match="is a directory"):
        read_image_bytes(str(tmp_path), base_dir="/")


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "CMYK", "LA", "I;16"])
def test_any_mode_becomes_three_channels_of_the_spec_size(mode):
    pixels = decode(png_bytes(_picture(mode)) if mode != "CMYK" else _jpeg(_picture(mode)), SPEC)
    assert pixels.shape == (3, 8, 8) and pixels.dtype == torch.float32
    assert pixels.min() >= -1 and pixels.max() <= 1  # SigLIP normalisation maps [0, 1] to [-1, 1]


def _jpeg(image: Image.Image) -> bytes:  # PNG cannot hold CMYK
    out = io.BytesIO()
    image.save(out, format="JPEG")
    return out.getvalue()


def test_transparency_is_composited_onto_white():
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    spec = ImageSpec(size=4, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert torch.equal(decode(png_bytes(clear), spec), torch.ones(3, 4, 4))


def test_normalisation_matches_a_hand_computation():
    spec = ImageSpec(size=2, mean=CLIP_MEAN, std=CLIP_STD)
    image = Image.new("RGB", (2, 2), (200, 100, 50))
    image.putpixel((1, 0), (10, 20, 30))  # same size: no resize, so pixels map one to one
    pixels = decode(png_bytes(image), spec)
    for c, value in enumerate((10, 20, 30)):
        assert pixels[c, 0, 1].item() == pytest.approx(
            (value / 255 - CLIP_MEAN[c]) / CLIP_STD[c], abs=1e-6
        )
    assert pixels[0, 1, 1].item() == pytest.approx(
        (200 / 255 - CLIP_MEAN[0]) / CLIP_STD[0], abs=1e-6
    )


def test_resize_is_bicubic_to_a_square():
    image = _picture(size=(30, 17))
    spec = ImageSpec(size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    resized = image.resize((8, 8), Image.Resampling.BICUBIC).tobytes()
    want = torch.tensor(list(resized), dtype=torch.float32)
    assert torch.allclose(decode(png_bytes(image), spec), want.view(8, 8, 3).permute(2, 0, 1) / 255)


def test_undecodable_bytes_raise_image_error():
    with pytest.raises(
        ImageError, match=r"^image bytes are not a decodable image \(cannot identify image file\)$"
    ):
        decode(os.urandom(300), SPEC)
    with pytest.raises(ImageError, match="not a decodable image"):
        decode(png_bytes(_picture(size=(64, 64)))[:-200], SPEC)  # truncated mid-data
    with pytest.raises(ImageError, match="not valid base64"):
        read_image_bytes({"b64": "not base64!"}, base_dir=".")


def test_check_image_value_rejects_what_cannot_name_an_image():
    bad = [
        3,
        None,
        "",
        {},
        {"bytes": None},
        {"bytes": 5},
        {"b64": b"raw"},
        {"path": ""},
        {"url": "x"},
        ["a.png"],
    ]
    for value in bad:
        problem = check_image_value(value)
        assert problem and problem.startswith("image"), value
        with pytest.raises(ImageError):
            read_image_bytes(value, base_dir=".")
    assert (
        check_image_value(3)
        == "image: expected a path, a gs:// URI, or {'bytes'|'b64'|'path': ...}, got int"
    )
    for good in [
        "a.png",
        "gs://b/a.png",
        "/gcs/b/a.png",
        {"bytes": b"x"},
        {"b64": "eA=="},
        {"path": "a.png", "bytes": None},
    ]:
        assert check_image_value(good) is None, good


def test_spec_round_trips_through_processor_configs():
    spec = ImageSpec(size=224, mean=CLIP_MEAN, std=CLIP_STD)
    config = spec.to_dict()
    assert (
        config["size"] == {"height": 224, "width": 224}
        and config["resample"] == Image.Resampling.BICUBIC
    )
    assert ImageSpec.from_dict(config) == spec
    clip = {
        "size": {"shortest_edge": 336},
        "crop_size": {"height": 224, "width": 224},
        "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD),
    }
    assert ImageSpec.from_dict(clip) == spec
    assert (
        ImageSpec.from_dict(
            {"size": {"shortest_edge": 224}, "image_mean": CLIP_MEAN, "image_std": CLIP_STD}
        )
        == spec
    )
    old = {"size": 384, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    assert ImageSpec.from_dict(old) == ImageSpec(size=384, mean=SIGLIP_MEAN, std=SIGLIP_STD)
    with pytest.raises(ValueError, match="image_mean"):
        ImageSpec.from_dict({"size": 224})
    with pytest.raises(ValueError, match="only square"):
        ImageSpec.from_dict({**config, "size": {"height": 224, "width": 300}})
    with pytest.raises(ValueError, match="std"):
        ImageSpec(size=8, mean=SIGLIP_MEAN, std=(0.5, 0.0, 0.5))


def test_to_pil_keeps_the_original_size_in_rgb():
    image = to_pil(png_bytes(_picture("P", size=(20, 6))))
    assert image.mode == "RGB" and image.size == (20, 6)
