"""The 13-channel texture array, one vector per merged visual token of the base model.

    geometry = Geometry.of(base.image_processor)
    maps = texture_arrays(batch.pixel_values, batch.image_grid_thw, geometry=geometry)
    maps[0].shape   # [13, grid_h / merge, grid_w / merge]: one cell per LM visual token

The images are recovered exactly from the pixels the model gets (the processor's patches, its
mean and std undone), so the cells are Qwen's own merged-token grid (patch 16 and merge 2 on
the real models: a cell is 32x32 pixels) in the order the LM sees the tokens, row by row. Each
channel is then z-scored over one image's cells: a sample's texture never depends on the batch.

Channels (0-10 as in the public ARR-COC v0.1):
  0-2 RGB; 3 L*, 4 a* (CIELAB); 5 Sobel Gx, 6 Sobel Gy, 7 gradient magnitude; 8 y, 9 x (cell
  centre); 10 eccentricity (distance from the image centre); 11 b* (CIELAB); 12 local contrast
  (the standard deviation of L* inside the cell).
The public code's channels 11 and 12 were copies of 7 and 3. b* replaces the first because
without it blue and yellow differ in no colour channel but lightness (the public array dropped
b*, the third axis of the same colour space); local contrast replaces the second because a
cell's mean cannot tell a flat cell from one an edge or a small object crosses, which is what
cells of a small object look like.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

NUM_CHANNELS = 13
MAGNITUDE = 7  # the edge channel the perspectival score reads
LAYOUT = (8, 9, 10)  # y, x, eccentricity: where a cell is, not what it holds
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8
# sRGB (D65) to XYZ, and the D65 white point.
_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])


@dataclass(frozen=True, kw_only=True)
class Geometry:
    """How the image processor cut the pixels: patch side, merge factor, temporal patch, and the
    mean/std it normalised with."""

    patch: int
    merge: int
    temporal: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def of(cls, processor) -> Geometry:
        return cls(
            patch=processor.patch_size,
            merge=processor.merge_size,
            temporal=processor.temporal_patch_size,
            mean=tuple(processor.image_mean),
            std=tuple(processor.image_std),
        )

    @property
    def cell(self) -> int:
        """Pixels per side of one merged token."""
        return self.patch * self.merge


def images_from_pixels(
    pixel_values: torch.Tensor, grid_thw: torch.Tensor, *, geometry: Geometry
) -> list[torch.Tensor]:
    """Undo the processor: each image's [3, H, W] RGB in [0, 1] from its flat patches."""
    g, images, start = geometry, [], 0
    for t, h, w in grid_thw.tolist():
        flat = pixel_values[start : start + t * h * w]
        start += t * h * w
        # The processor's layout: (t, h/m, w/m, m, m) patches of (C, temporal, p, p) values.
        patches = flat.view(
            t, h // g.merge, w // g.merge, g.merge, g.merge, 3, g.temporal, g.patch, g.patch
        )
        first = patches[0, :, :, :, :, :, 0]  # a still image repeats its frame over time
        image = first.permute(4, 0, 2, 5, 1, 3, 6).reshape(3, h * g.patch, w * g.patch)
        mean = torch.tensor(g.mean, device=image.device).view(3, 1, 1)
        std = torch.tensor(g.std, device=image.device).view(3, 1, 1)
        images.append((image.float() * std + mean).clamp_(0, 1))
    return images


def texture_array(rgb: torch.Tensor, *, cell: int) -> torch.Tensor:
    """[3, H, W] RGB in [0, 1] to the raw [13, H / cell, W / cell] array (not yet z-scored)."""
    lab = rgb_to_lab(rgb)
    lightness = lab[0:1] / 100
    gx, gy = sobel(lightness)
    magnitude = torch.sqrt(gx**2 + gy**2 + 1e-12)
    pixel_maps = torch.cat([rgb, lab[0:1] / 100, lab[1:2] / 128, gx, gy, magnitude, lab[2:3] / 128])
    pooled = F.avg_pool2d(pixel_maps.unsqueeze(0), cell)[0]
    mean_sq = F.avg_pool2d((lightness**2).unsqueeze(0), cell)[0]
    contrast = (mean_sq - pooled[3:4] ** 2).clamp_(min=0).sqrt()
    y, x, eccentricity = _layout(pooled.shape[1], pooled.shape[2], device=rgb.device)
    return torch.cat([pooled[:8], y, x, eccentricity, pooled[8:9], contrast])


def _layout(rows: int, cols: int, *, device) -> tuple[torch.Tensor, ...]:
    y = ((torch.arange(rows, device=device) + 0.5) / rows).view(1, rows, 1).expand(1, rows, cols)
    x = ((torch.arange(cols, device=device) + 0.5) / cols).view(1, 1, cols).expand(1, rows, cols)
    eccentricity = torch.sqrt((y - 0.5) ** 2 + (x - 0.5) ** 2) / 0.5**0.5
    return y, x, eccentricity


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """[3, H, W] sRGB in [0, 1] to CIELAB (L* in [0, 100], a* and b* about [-128, 127])."""
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = torch.einsum("ij,jhw->ihw", _RGB_TO_XYZ.to(rgb), linear) / _WHITE.to(rgb).view(3, 1, 1)
    eps = (6 / 29) ** 3
    f = torch.where(xyz > eps, xyz.clamp(min=eps) ** (1 / 3), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return torch.stack([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def sobel(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sobel x and y gradients of a [1, H, W] map (edges replicated, so borders are not edges)."""
    kernels = torch.stack([_SOBEL_X, _SOBEL_X.T]).unsqueeze(1).to(gray)
    padded = F.pad(gray.unsqueeze(0), (1, 1, 1, 1), mode="replicate")
    grads = F.conv2d(padded, kernels)[0]
    return grads[0:1], grads[1:2]


def normalise(texture: torch.Tensor) -> torch.Tensor:
    """Z-score each channel over one image's cells (a constant channel becomes zeros)."""
    flat = texture.flatten(1)
    mean = flat.mean(1).view(-1, 1, 1)
    std = flat.std(1, unbiased=False).view(-1, 1, 1)
    return (texture - mean) / (std + 1e-6)


def texture_arrays(
    pixel_values: torch.Tensor, grid_thw: torch.Tensor, *, geometry: Geometry
) -> list[torch.Tensor]:
    """The normalised [13, h, w] texture of every image of a batch, each on its token grid."""
    with torch.no_grad():
        images = images_from_pixels(pixel_values, grid_thw, geometry=geometry)
        return [normalise(texture_array(image, cell=geometry.cell)) for image in images]
