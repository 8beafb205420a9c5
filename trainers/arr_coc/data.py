"""What the ARR-COC trainer reads: the records of its split, each stage's share of them, and
the examples of one optimizer step, the same for a step wherever and whenever it runs.

    split, skipped = load_records(cfg)                 # records, rendered scenes when "" given
    data = StageData.of(split, stage=3, skipped=skipped)
    examples = step_examples(data.train, base=base, step=7, cfg=cfg, dist=dist)

Stages 1 and 2 train on every record; stage 3 on the hard ones (`"hard": true`: clutter, small
objects) when there are any. Examples are encoded when a step asks for them, so a step costs
the decoding of its own images only, and a resumed run draws exactly the batches it would have.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from trainers.arr_coc.config import ArrCocConfig, DataConfig
from trainers.arr_coc.inputs import Example, collate
from trainers.arr_coc.records import check_record, to_example
from trainers.arr_coc.scenes import HARD, NORMAL, scene_records
from trainers.common.distributed import Dist
from trainers.common.prepared import records_uri
from trainers.common.records import Split, base_dir, fingerprint, load_split

HARD_FIELD = "hard"  # a record's flag: one of stage 3's hard examples


def debug_records(data: DataConfig, *, seed: int) -> list[dict]:
    """The rendered scenes: normal ones, then hard ones flagged as such."""
    normal = scene_records(data.synthetic_examples, seed=seed, spec=NORMAL)
    hard = scene_records(data.hard_examples, seed=seed + 1, spec=HARD)
    return normal + [{**record, HARD_FIELD: True} for record in hard]


def load_records(cfg: ArrCocConfig) -> tuple[Split, int]:
    """(train and eval records, skipped count) from `data.train`/`data.eval` or the scenes."""
    data = cfg.data
    return load_split(
        records_uri(data.train),
        records_uri(data.eval),
        validate=check_record,
        on_bad=data.on_bad_record,
        eval_fraction=data.eval_fraction,
        synthetic=lambda: debug_records(data, seed=cfg.train.seed),
    )


def for_stage(located: list, *, stage: int) -> list:
    """Stage 3 trains on the hard records when there are any; stages 1 and 2 on all."""
    hard = [item for item in located if item[1].get(HARD_FIELD)]
    return hard if stage == 3 and hard else located


@dataclass
class StageData:
    train: list[tuple[str, dict]]  # (where, record) this stage trains on
    eval: list[tuple[str, dict]]
    all_train_records: list[dict]  # the split's, whatever the stage (the tokenizer's texts)
    fingerprint: str
    skipped_records: int
    duplicates_removed: int

    @classmethod
    def of(cls, split: Split, *, stage: int, skipped: int) -> StageData:
        train = for_stage(split.train, stage=stage)
        return cls(
            train=train,
            eval=for_stage(split.eval, stage=stage),
            all_train_records=split.train_records,
            fingerprint=fingerprint([record for _, record in train]),
            skipped_records=skipped,
            duplicates_removed=split.duplicates_removed,
        )

    @property
    def train_records(self) -> list[dict]:
        return [record for _, record in self.train]


def encode_located(base, located: list[tuple[str, dict]]) -> list[Example]:
    return [
        to_example(base, record, where=where, base_dir=base_dir(where)) for where, record in located
    ]


def step_indices(num_records: int, *, step: int, global_batch: int, seed: int) -> list[int]:
    """The records of optimizer step `step`'s global batch: epochs of seeded permutations,
    each step a consecutive slice (a short last slice continues into the next epoch)."""
    start = step * global_batch
    indices = []
    for position in range(start, start + global_batch):
        epoch, offset = divmod(position, num_records)
        indices.append(_permutation(num_records, seed=seed, epoch=epoch)[offset])
    return indices


@functools.lru_cache(maxsize=4)
def _permutation(n: int, *, seed: int, epoch: int) -> tuple[int, ...]:
    order = list(range(n))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return tuple(order)


def step_batches(data: StageData, *, base, step: int, cfg: ArrCocConfig, dist: Dist) -> list:
    """This rank's micro-batches of step `step` (a rank takes every world_size-th record)."""
    train = cfg.train
    indices = step_indices(
        len(data.train), step=step, global_batch=train.global_batch_size, seed=train.seed
    )
    mine = indices[dist.rank :: dist.world_size]
    examples = encode_located(base, [data.train[i] for i in mine])
    size, pad = train.micro_batch_size, base.tokenizer.pad_token_id
    return [collate(examples[i : i + size], pad_id=pad) for i in range(0, len(examples), size)]
