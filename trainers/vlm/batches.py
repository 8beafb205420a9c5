"""The micro-batches each rank trains on at each optimizer step, and the VQA items that
generation is scored on.

    batches = StepBatches(data, spec, cfg=cfg, dist=dist)
    micro_batches = batches.for_step(step)   # this rank's share of step's global batch

One DataLoader per epoch (workers decode images ahead of the loop; pinned memory on CUDA),
sharded by `ResumableSampler`. Asking for a step out of sequence (a resume) reopens the loader at
that step's position, so a resumed run reads exactly what the uninterrupted one would have.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from trainers.common.config import ConfigError
from trainers.common.distributed import Dist
from trainers.common.records import DataError
from trainers.vlm.config import VLMConfig
from trainers.vlm.data import Batch, VLMData, base_dir, make_loader
from trainers.vlm.images import ImageError, ImageSpec, decode, read_image_bytes
from trainers.vlm.sampler import ResumableSampler, position, steps_per_epoch


class StepBatches:
    def __init__(self, data: VLMData, spec: ImageSpec, *, cfg: VLMConfig, dist: Dist) -> None:
        train = cfg.train
        if train.global_batch_size % (train.micro_batch_size * dist.world_size):
            raise ConfigError(
                f"train.global_batch_size={train.global_batch_size} must be a multiple of "
                f"train.micro_batch_size={train.micro_batch_size} x world size {dist.world_size}"
            )
        self.data, self.spec, self.cfg, self.dist = data, spec, cfg, dist
        self.per_rank = train.global_batch_size // dist.world_size
        self.accumulation = self.per_rank // train.micro_batch_size
        self.steps_per_epoch = steps_per_epoch(
            len(data.train), world_size=dist.world_size, global_batch=train.global_batch_size
        )
        self._iterator, self._epoch, self._next_step = None, -1, -1

    def for_step(self, step: int) -> list[Batch]:
        epoch, start = position(
            step, steps_per_epoch=self.steps_per_epoch, per_rank_batch=self.per_rank
        )
        if self._iterator is None or epoch != self._epoch or step != self._next_step:
            self._open(epoch, start)
        self._next_step = step + 1
        return [next(self._iterator) for _ in range(self.accumulation)]

    def _open(self, epoch: int, start: int) -> None:
        self.close()
        sampler = ResumableSampler(
            self.data.train,
            num_replicas=self.dist.world_size,
            rank=self.dist.rank,
            seed=self.cfg.train.seed,
            start=start,
        )
        sampler.set_epoch(epoch)
        loader = make_loader(
            self.data.train,
            self.spec,
            pad_id=self.data.tokenizer.pad_token_id,
            batch_size=self.cfg.train.micro_batch_size,
            sampler=sampler,
            num_workers=self.cfg.data.num_workers,
            pin_memory=self.dist.device.startswith("cuda"),
        )
        # Starting a loader draws its workers' base seed from the global torch RNG, and a resumed
        # run starts one more loader than the uninterrupted one: unforked, that draw would shift
        # the RNG stream that dropout (LoRA's included) reads from, and resume would not be exact.
        with torch.random.fork_rng(devices=[]):
            self._iterator = iter(loader)
        self._epoch = epoch

    def close(self) -> None:
        """Stop the current loader's worker processes."""
        shutdown = getattr(self._iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()
        self._iterator = None


class VQAItem(NamedTuple):
    pixels: torch.Tensor
    record: dict
    where: str
    image: bytes  # the encoded image, as read (for sample tables)


def vqa_items(
    located: list[tuple[str, dict]], spec: ImageSpec, *, on_bad: str, limit: int = 0
) -> tuple[list[VQAItem], int]:
    """(the first `limit` VQA records (0: all) with their pixels, how many were skipped for an
    unreadable image); in "error" mode an unreadable image raises DataError naming the record."""
    items, skipped = [], 0
    for where, record in located:
        if "question" not in record:
            continue
        try:
            image = read_image_bytes(record["image"], base_dir=base_dir(where))
            pixels = decode(image, spec)
        except ImageError as err:
            if on_bad != "skip":
                raise DataError(f"{where}: {err}") from None
            skipped += 1
            continue
        items.append(VQAItem(pixels, record, where, image))
        if limit and len(items) >= limit:
            break
    return items, skipped
