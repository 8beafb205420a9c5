"""Which examples each rank reads at each step: torch's DistributedSampler, resumable mid-epoch.

The global batch of step s is positions [s*G, (s+1)*G) of the epoch's seeded permutation, for any
world size: DistributedSampler hands rank r every world_size-th position, and each rank takes
G/world_size of them per step. So 1 process and N processes train on the same examples, and a
resumed run starts at exactly the position the interrupted one reached.
"""

from __future__ import annotations

import itertools

from torch.utils.data import DistributedSampler

from trainers.common.config import ConfigError


class ResumableSampler(DistributedSampler):
    """A shuffling, shard-per-rank DistributedSampler that can skip the first `start` indices
    of this rank's share of the epoch."""

    def __init__(self, dataset, *, num_replicas: int, rank: int, seed: int, start: int = 0):
        # drop_last: every rank gets the same count and no example is seen twice in an epoch.
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True
        )
        self.start = start

    def __iter__(self):
        return itertools.islice(super().__iter__(), self.start, None)

    def __len__(self) -> int:
        return super().__len__() - self.start


def steps_per_epoch(num_examples: int, *, world_size: int, global_batch: int) -> int:
    """Full global batches per epoch (the same for every world size dividing global_batch)."""
    steps = (num_examples // world_size) // (global_batch // world_size)
    if steps == 0:
        raise ConfigError(
            f"train.global_batch_size={global_batch} is larger than the {num_examples} "
            "training examples; lower it or add data"
        )
    return steps


def position(step: int, *, steps_per_epoch: int, per_rank_batch: int) -> tuple[int, int]:
    """(epoch, indices of this rank's share already consumed in it) at the start of `step`."""
    epoch, step_in_epoch = divmod(step, steps_per_epoch)
    return epoch, step_in_epoch * per_rank_batch
