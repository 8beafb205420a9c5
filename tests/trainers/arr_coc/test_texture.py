"""The texture array: pixels recovered exactly from Qwen's patches, one cell per merged token
(8- and 16-pixel patches), real colour channels where the public code had copies, and a
per-image normalisation that no other image of the batch can move."""

import pytest
import torch
from PIL import Image
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

from tests.support.tiny_qwen3_vl import decode_png
from trainers.arr_coc.scenes import COLOURS, scene_records
from trainers.arr_coc.texture import (
    NUM_CHANNELS,
    Geometry,
    images_from_pixels,
    rgb_to_lab,
    texture_array,
    texture_arrays,
)

SCENES = [decode_png(r["image"]) for r in scene_records(3, seed=1)]


def _processor(patch: int) -> Qwen2VLImageProcessorPil:
    return Qwen2VLImageProcessorPil(
        patch_size=patch,
        merge_size=2,
        temporal_patch_size=2,
        size={"shortest_edge": 32 * 32, "longest_edge": 256 * 256},
        image_mean=[0.48145466, 0.4578275, 0.40821073],  # not 0.5: undoing it must be exact
        image_std=[0.26862954, 0.26130258, 0.27577711],
    )


def _tensor(image: Image.Image) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return raw.view(image.height, image.width, 3).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("patch", [8, 16])
def test_images_come_back_from_the_patches_on_the_merged_token_grid(patch):
    processor = _processor(patch)
    # 128x96: the grid is not square, so a transposed unpatchify cannot pass.
    images = [s.crop((0, 0, 128, 96)) for s in SCENES[:2]]
    out = processor(images=images, return_tensors="pt")
    geometry = Geometry.of(processor)
    recovered = images_from_pixels(out["pixel_values"], out["image_grid_thw"], geometry=geometry)
    for image, back in zip(images, recovered, strict=True):
        assert back.shape == (3, 96, 128)
        assert torch.allclose(back, _tensor(image), atol=1e-5)
    textures = texture_arrays(out["pixel_values"], out["image_grid_thw"], geometry=geometry)
    for texture, (_, h, w) in zip(textures, out["image_grid_thw"].tolist(), strict=True):
        assert texture.shape == (NUM_CHANNELS, h // 2, w // 2)  # one cell per LM visual token


def test_lab_matches_reference_values():
    rgb = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0]])
    lab = rgb_to_lab(rgb.view(3, 1, 4))[:, 0].T
    expected = torch.tensor(
        [[100.0, 0.0, 0.0], [53.24, 80.09, 67.20], [32.30, 79.19, -107.86], [87.73, -86.18, 83.18]]
    )  # white, red, blue, green (CIE, D65)
    assert torch.allclose(lab, expected, atol=0.05)


def _flat(colour: tuple[int, int, int]) -> torch.Tensor:
    return _tensor(Image.new("RGB", (32, 32), colour))


def test_channels_11_and_12_are_their_own():
    raw = texture_array(_tensor(SCENES[0]), cell=16)
    for new, old in ((11, 7), (12, 3)):  # the public v0.1's copies
        assert not torch.allclose(raw[new], raw[old])
    # b* (channel 11) tells blue from yellow, which differ in no other colour-opponent channel
    # the public array kept (it dropped b*).
    yellow, blue = (
        texture_array(_flat(COLOURS[c]), cell=16)[11].mean() for c in ("yellow", "blue")
    )
    assert yellow > 0.5 > -0.5 > blue
    # local contrast (channel 12): zero in a flat cell, high where an edge crosses the cell
    half = _flat((255, 255, 255))
    half[:, :, 8:24] = 0  # an edge inside each of the two cell columns
    assert texture_array(_flat((90, 90, 90)), cell=16)[12].abs().max() < 1e-3
    assert texture_array(half, cell=16)[12].min() > 0.3


def test_each_image_is_normalised_on_its_own():
    processor = _processor(8)
    alone = processor(images=SCENES[:1], return_tensors="pt")
    together = processor(images=SCENES, return_tensors="pt")
    geometry = Geometry.of(processor)
    one = texture_arrays(alone["pixel_values"], alone["image_grid_thw"], geometry=geometry)[0]
    batch = texture_arrays(together["pixel_values"], together["image_grid_thw"], geometry=geometry)
    assert torch.equal(one, batch[0])
    flat = one.flatten(1)
    assert torch.allclose(flat.mean(1), torch.zeros(NUM_CHANNELS), atol=1e-5)
    varying = flat.std(1, unbiased=False) > 1e-3
    assert torch.allclose(
        flat.std(1, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-3
    )
    assert not torch.equal(batch[0], batch[1])  # guard: the images do differ
