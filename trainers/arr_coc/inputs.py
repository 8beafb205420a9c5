"""A question about an image to Qwen3-VL inputs, and examples to a padded batch.

    example = encode(base, image=pil, question="what colour is the triangle?", answer="red",
                     mask=mask_pil)
    batch = collate([example, ...], pad_id=base.tokenizer.pad_token_id)
    out = base.model(**batch.model_inputs())          # the plain all-token forward

The prompt is the chat template's user turn (the image, then the question); the answer is
what the template appends for the assistant turn, up to and including its end token, and is
the only part with labels. The image placeholder is expanded to one `<|image_pad|>` per merged
token (`grid_t * grid_h * grid_w / merge**2`), and `mm_token_type_ids` marks those tokens, as
Qwen3VLProcessor does. An object mask becomes the fraction of each merged cell it covers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from PIL import Image

from trainers.arr_coc.qwen import END_TOKEN, Base
from trainers.common.packing import IGNORE


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]
    mm_token_type_ids: list[int]
    question_ids: list[int]
    pixel_values: torch.Tensor  # [patches, C * temporal * patch * patch]
    grid_thw: torch.Tensor  # [3]
    # The fraction of each merged cell the referred object covers, [grid_h/merge, grid_w/merge];
    # all NaN when the record has no mask (mask losses and metrics skip it).
    cell_mask: torch.Tensor


@dataclass
class Batch:
    input_ids: torch.Tensor  # [B, L], right-padded
    attention_mask: torch.Tensor
    mm_token_type_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor
    image_grid_thw: torch.Tensor  # [B, 3], one image per example
    question_ids: torch.Tensor  # [B, Q], right-padded
    question_mask: torch.Tensor
    cell_masks: list[torch.Tensor]  # per example [h, w], NaN where unknown

    def to(self, device) -> Batch:
        moved = {}
        for f in fields(self):
            value = getattr(self, f.name)
            moved[f.name] = (
                [v.to(device) for v in value] if isinstance(value, list) else value.to(device)
            )
        return Batch(**moved)

    def model_inputs(self) -> dict:
        """The keyword arguments of a plain Qwen3-VL forward over every visual token."""
        names = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values")
        return {n: getattr(self, n) for n in names} | {"image_grid_thw": self.image_grid_thw}

    @property
    def num_examples(self) -> int:
        return self.input_ids.shape[0]


def encode(
    base: Base, *, image: Image.Image, question: str, answer: str, mask: Image.Image | None = None
) -> Example:
    """One example: pixels, the expanded prompt and the answer with its labels."""
    tokenizer, processor = base.tokenizer, base.image_processor
    pixels = processor(images=[image.convert("RGB")], return_tensors="pt")
    grid = pixels["image_grid_thw"][0]
    num_image_tokens = int(grid.prod()) // processor.merge_size**2
    prompt, completion = render(tokenizer, question=question, answer=answer)
    prompt_ids = _expand(
        tokenizer(prompt, add_special_tokens=False)["input_ids"], base, num_image_tokens
    )
    answer_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    is_image = [int(t == base.image_token_id) for t in prompt_ids]
    return Example(
        input_ids=prompt_ids + answer_ids,
        labels=[IGNORE] * len(prompt_ids) + answer_ids,
        mm_token_type_ids=is_image + [0] * len(answer_ids),
        question_ids=tokenizer(question, add_special_tokens=False)["input_ids"],
        pixel_values=pixels["pixel_values"],
        grid_thw=grid,
        cell_mask=cell_coverage(mask, grid, patch=processor.patch_size, merge=processor.merge_size),
    )


def render(tokenizer, *, question: str, answer: str) -> tuple[str, str]:
    """(prompt, completion): the user turn with the generation prompt, and the assistant's answer
    through its end token, as the chat template writes them."""
    user = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    turn = user + [{"role": "assistant", "content": answer}]
    full = tokenizer.apply_chat_template(turn, tokenize=False)
    if not full.startswith(prompt) or END_TOKEN not in full[len(prompt) :]:
        raise ValueError("the chat template does not end the assistant turn after the prompt")
    completion = full[len(prompt) :]
    return prompt, completion[: completion.index(END_TOKEN) + len(END_TOKEN)]


def _expand(ids: list[int], base: Base, num_image_tokens: int) -> list[int]:
    token = base.image_token_id
    if ids.count(token) != 1:
        raise ValueError(f"the prompt holds {ids.count(token)} image placeholders; expected 1")
    at = ids.index(token)
    return ids[:at] + [token] * num_image_tokens + ids[at + 1 :]


def cell_coverage(
    mask: Image.Image | None, grid_thw: torch.Tensor, *, patch: int, merge: int
) -> torch.Tensor:
    """The fraction of each merged cell (merge x merge patches) that a mask's non-zero pixels
    cover, the mask first resized as the image was (to grid * patch pixels); NaN without one."""
    height, width = int(grid_thw[1]) * patch, int(grid_thw[2]) * patch
    if mask is None:
        return torch.full((height // (patch * merge), width // (patch * merge)), float("nan"))
    gray = mask.convert("L").resize((width, height), Image.Resampling.BILINEAR)
    raw = torch.frombuffer(bytearray(gray.tobytes()), dtype=torch.uint8)
    pixels = raw.view(1, 1, height, width).float().div_(255)
    return F.avg_pool2d(pixels, kernel_size=merge * patch)[0, 0]


def collate(examples: list[Example], *, pad_id: int) -> Batch:
    """Right-padded tensors; the pixels of all examples in one [patches, dim] tensor, in order."""
    return Batch(
        input_ids=_pad([e.input_ids for e in examples], pad_id),
        attention_mask=_pad([[1] * len(e.input_ids) for e in examples], 0),
        mm_token_type_ids=_pad([e.mm_token_type_ids for e in examples], 0),
        labels=_pad([e.labels for e in examples], IGNORE),
        pixel_values=torch.cat([e.pixel_values for e in examples]),
        image_grid_thw=torch.stack([e.grid_thw for e in examples]),
        question_ids=_pad([e.question_ids for e in examples], pad_id),
        question_mask=_pad([[1] * len(e.question_ids) for e in examples], 0),
        cell_masks=[e.cell_mask for e in examples],
    )


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    width = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (width - len(r)) for r in rows], dtype=torch.long)
