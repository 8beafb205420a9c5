"""Where the kept tokens are, for people: cell coordinates, and images with the kept cells drawn.

    cells = kept_cells(alloc.indices[0], grid_width=w)            # [[row, col], ...]
    picture = draw_kept(image, alloc.indices[0], grid=(h, w))     # a PIL image for a W&B table

A cell is one merged visual token: row-major on the image's (h, w) token grid, so cell (r, c)
covers the pixels [r, r + 1) x [c, c + 1) times the image's size over the grid.
"""

from __future__ import annotations

import torch
from PIL import Image, ImageDraw

DROPPED_SHADE = 110  # alpha of the grey over dropped cells: the kept ones stand out
OUTLINE = (255, 0, 0)


def kept_cells(indices: torch.Tensor, *, grid_width: int) -> list[list[int]]:
    """[row, col] of each kept cell, in token order (what a prediction names)."""
    return [[i // grid_width, i % grid_width] for i in indices.tolist()]


def draw_kept(image: Image.Image, indices: torch.Tensor, *, grid: tuple[int, int]) -> Image.Image:
    """`image` with dropped cells greyed out and kept cells outlined."""
    rows, cols = grid
    cell_w, cell_h = image.width / cols, image.height / rows
    kept = set(indices.tolist())
    shade = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shade)
    for index in range(rows * cols):
        r, c = divmod(index, cols)
        box = (c * cell_w, r * cell_h, (c + 1) * cell_w - 1, (r + 1) * cell_h - 1)
        if index in kept:
            draw.rectangle(box, outline=OUTLINE + (255,))
        else:
            draw.rectangle(box, fill=(128, 128, 128, DROPPED_SHADE))
    return Image.alpha_composite(image.convert("RGBA"), shade).convert("RGB")
