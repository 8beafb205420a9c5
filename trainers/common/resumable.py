"""Which checkpoints a run may resume: those of the same trainer, on the same data, with the
same settings where they change the math (lr, schedule, batch sizes, seed, model, LoRA, ...).
How long a run trains, how it logs and evaluates, and where it writes do not count.

    fingerprint = of_run(cfg, task)           # recorded in every commit marker
    check(marker["fingerprint"], fingerprint, root=..., step=...)   # ConfigError naming the change
    root = default_root(cfg, trainer=LLMTask, world_size=1)  # ./outputs/checkpoints/llm-<key>

Without `--checkpoint-dir` (and outside Vertex, whose AIP_CHECKPOINT_DIR a restarted job finds
again), each run gets a directory of its own, keyed by its trainer, data, settings and number
of processes: the same command resumes where it stopped, another lr or another process count
starts afresh beside it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from typing import Any

from trainers.common.config import ConfigError, flat_fields, to_dict
from trainers.common.records import fingerprint as records_fingerprint

DEFAULT_ROOT = "./outputs/checkpoints"
# Config fields (dotted, fnmatch patterns) that never change what a step computes: how long
# and how visibly a run trains, where it reads and writes (the data fingerprint stands for
# the records themselves), how fast, and how many bad steps it may skip.
NOT_MATH = (
    "preset",
    "output_dir",
    "checkpoint.*",
    "wandb.*",
    "train.max_steps",
    "train.log_every",
    "train.eval_every",
    "train.eval_batches",
    "train.exact_match_examples",
    "train.max_new_tokens",
    "train.threads",
    "train.skip_nonfinite_steps",
    "data.train",
    "data.eval",
    "data.num_workers",
    "data.on_bad_record",
    "ddp.*",
    "lora.merge",
    "*.compile",
    "*.gradient_checkpointing",
    "*.attn_implementation",
)
_SHOWN = 3  # differences named in the error; the rest are counted


def trainer_name(task_class: type) -> str:
    return f"{task_class.__module__}.{task_class.__qualname__}"


def math_fields(cfg) -> dict[str, Any]:
    """The config fields that change the math, flat ("optim.lr": 3e-4), as JSON has them."""
    flat = flat_fields(to_dict(cfg))
    kept = {k: v for k, v in flat.items() if not any(fnmatch.fnmatch(k, p) for p in NOT_MATH)}
    return json.loads(json.dumps(kept))  # tuples as lists, as a marker reads back


def of_run(cfg, task) -> dict:
    """What a checkpoint of this run records: trainer, data fingerprint, math fields."""
    return {
        "trainer": trainer_name(type(task)),
        "data": records_fingerprint(task.train_records),
        "config": math_fields(cfg),
    }


def differences(recorded: dict, current: dict) -> list[str]:
    """What differs, each as "name: X there, Y here", trainer and data first."""
    found = [
        f"{name}: {recorded.get(name)} there, {current[name]} here"
        for name in ("trainer", "data")
        if recorded.get(name) != current[name]
    ]
    if found and found[0].startswith("trainer"):
        return found  # another trainer's fields all differ: saying so is enough
    there, here = recorded.get("config", {}), current["config"]
    for name in sorted(set(there) | set(here)):
        if there.get(name, "<unset>") != here.get(name, "<unset>"):
            found.append(
                f"{name}={there.get(name, '<unset>')} there, {here.get(name, '<unset>')} here"
            )
    return found


def check(recorded: dict, current: dict, *, root: str, step: int) -> None:
    """Raise a one-line ConfigError unless the checkpoint's fingerprint is this run's."""
    found = differences(recorded, current)
    if not found:
        return
    shown = "; ".join(found[:_SHOWN]) + (
        f"; and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    )
    raise ConfigError(
        f"checkpoint.dir {root} holds a checkpoint of another run (step {step}; {shown}): "
        "resume it with its own settings, give another --checkpoint-dir, or start over "
        "there with --no-resume (checkpoint.resume=false), which removes its checkpoints"
    )


def default_root(cfg, *, trainer: type, world_size: int) -> str:
    """This run's own checkpoint directory when none is given. The process count is part of
    it: a checkpoint holds one RNG state per rank, so a run on 2 processes cannot resume one
    made on 1 (the same command with LIFTOFF_NPROC_PER_NODE=2 is another run)."""
    flat = flat_fields(to_dict(cfg))
    identity = {
        "trainer": trainer_name(trainer),
        "config": math_fields(cfg),
        "data": [flat.get("data.train"), flat.get("data.eval")],
    }
    if world_size > 1:  # one process keeps the key it had before processes counted
        identity["world_size"] = world_size
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
    short = trainer.__name__.removesuffix("Task").lower() or "run"
    return f"{DEFAULT_ROOT}/{short}-{key}"
