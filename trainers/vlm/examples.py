"""Image-text records to token examples: the image placeholder expanded to one token per image
feature, prompt tokens masked out of the loss, targets already shifted.

A record is VQA `{"image", "question", "answer"}` or a caption `{"image", "caption"}`; the image
is a path, a gs:// URI or inline bytes (see trainers.vlm.images). Both forms are rendered as a
two-turn chat with the tokenizer's template: the user turn holds the image and the question (a
caption record asks `caption_prompt`), the assistant turn is what is learned.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainers.common.packing import IGNORE
from trainers.common.records import DataError
from trainers.lm.chat import render_prompt, tokenize_record
from trainers.vlm.config import IMAGE_TOKEN
from trainers.vlm.images import check_image_value


@dataclass
class VLMExample:
    input_ids: list[int]
    targets: list[int]  # targets[t] is what position t predicts, or IGNORE
    image: object  # the record's image value, resolved in a DataLoader worker
    where: str  # "file:line" of the record, for errors about its image


def check_record(record: dict) -> str | None:
    """What is wrong with an image-text record, or None."""
    if "image" not in record:
        return "missing field 'image'"
    problem = check_image_value(record["image"])
    if problem:
        return problem
    fields = ("question", "answer") if "question" in record else ("caption",)
    for key in fields:
        if not isinstance(record.get(key), str) or not record[key].strip():
            return f"field {key!r} must be a non-empty string (VQA: question/answer; or caption)"
    return None


def is_vqa(record: dict) -> bool:
    return "question" in record


def prompt_text(record: dict, *, caption_prompt: str) -> str:
    return record["question"] if is_vqa(record) else caption_prompt


def answer_text(record: dict) -> str:
    return record["answer"] if is_vqa(record) else record["caption"]


def user_turn(question: str) -> dict:
    return {"role": "user", "content": f"{IMAGE_TOKEN}\n{question}"}


def expand_image_token(ids: list[int], *, image_token_id: int, num_image_tokens: int) -> list[int]:
    out: list[int] = []
    for token in ids:
        out.extend([token] * num_image_tokens if token == image_token_id else [token])
    return out


def tokenize(
    tokenizer,
    record: dict,
    *,
    where: str,
    num_image_tokens: int,
    caption_prompt: str,
    max_text_tokens: int,
    mask_prompt: bool = True,
) -> VLMExample | None:
    """The example for `record`, or None when truncation leaves nothing to learn."""
    messages = [
        user_turn(prompt_text(record, caption_prompt=caption_prompt)),
        {"role": "assistant", "content": answer_text(record)},
    ]
    text = tokenize_record(tokenizer, {"messages": messages}, mask_prompt=mask_prompt)
    ids, trainable = text.token_ids[:max_text_tokens], text.trainable[:max_text_tokens]
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if ids.count(image_id) != 1:
        raise DataError(f"{where}: the prompt must hold exactly one {IMAGE_TOKEN} token")
    position = ids.index(image_id)
    ids = ids[:position] + [image_id] * num_image_tokens + ids[position + 1 :]
    trainable = trainable[:position] + [False] * num_image_tokens + trainable[position + 1 :]
    targets = [t if keep else IGNORE for t, keep in zip(ids[1:], trainable[1:], strict=True)]
    if all(t == IGNORE for t in targets):
        return None
    return VLMExample(input_ids=ids, targets=[*targets, IGNORE], image=record["image"], where=where)


def prompt_ids(tokenizer, question: str, *, num_image_tokens: int) -> list[int]:
    """Token ids of a generation prompt: the user turn with the image, then the assistant cue."""
    text = render_prompt(tokenizer, [user_turn(question)])
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return expand_image_token(
        ids,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        num_image_tokens=num_image_tokens,
    )
