"""Vision-language training (vision tower + projector + causal LM) with DDP — the vlm-ddp
trainer container.

CPU recipe (about a minute on 2 cores; a tiny ViT and Llama built from configs, a tokenizer
trained in-process, rendered shapes with questions, nothing downloaded):

    python -m trainers.vlm --preset debug
    LIFTOFF_NPROC_PER_NODE=2 python -m trainers.vlm --preset debug     # DDP over 2 processes

Real run (one process per GPU; CLUSTER_SPEC or MASTER_ADDR/... for more nodes):
    python -m trainers.vlm --preset siglip-so400m-qwen2.5-1.5b --data gs://b/vqa.jsonl
Records: {"image", "question", "answer"} or {"image", "caption"}; the image is a path, a gs://
URI or inline bytes. Every config field can be set with --set section.field=value.
"""

from __future__ import annotations

import argparse
import os
import sys

from trainers.common.records import DataError


def parser() -> argparse.ArgumentParser:
    from trainers.llm.__main__ import parser as llm_parser

    p = llm_parser()
    p.prog = "python -m trainers.vlm"
    p.description = __doc__
    for action in p._actions:  # same flags as trainers.llm; presets and data differ
        if action.dest == "preset":
            action.help = (
                "debug | siglip-so400m-llama-3.2-1b | siglip-so400m-qwen2.5-1.5b | "
                "clip-l336-qwen2.5-7b-lora (default: debug)"
            )
        elif action.dest == "data":
            action.help = "image-text records: JSONL or Parquet, local, gs:// or /gcs/"
        elif action.dest == "lora":
            action.help = "train LoRA adapters on the language model instead of all its weights"
    return p


def resolve_config(args: argparse.Namespace):
    """The preset, then the flags, then --set overrides, validated."""
    from trainers.common.config import apply_overrides
    from trainers.vlm.presets import get_preset

    flags = {
        "data.train": args.data,
        "data.eval": args.eval_data,
        "output_dir": args.output_dir or os.environ.get("AIP_MODEL_DIR") or "./outputs/model",
        "checkpoint.dir": args.checkpoint_dir
        or os.environ.get("AIP_CHECKPOINT_DIR")
        or "./outputs/checkpoints",
        "train.max_steps": args.max_steps,
        "train.seed": args.seed,
        "lora.enabled": True if args.lora else None,
        "wandb.project": args.wandb_project,
        "wandb.secret": args.wandb_secret,
    }
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return apply_overrides(get_preset(args.preset), overrides + args.set)


def main(argv: list[str] | None = None, *, callbacks=()) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    try:
        cfg = resolve_config(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from trainers.common.distributed import relaunch_under_torchrun
    from trainers.common.preemption import PREEMPTED_EXIT_CODE, Preempted
    from trainers.vlm.train import train

    relaunch_under_torchrun("trainers.vlm", argv)
    try:
        train(cfg, callbacks=callbacks)
    except (DataError, ValueError) as err:
        # One write: under torchrun every rank shares this stderr, and print's separate
        # newline write lets two ranks' lines run together.
        sys.stderr.write(f"error: {err}\n")
        sys.stderr.flush()
        return 1
    except Preempted as err:
        print(str(err), file=sys.stderr, flush=True)
        return PREEMPTED_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
