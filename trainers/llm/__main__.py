"""Supervised fine-tuning of a causal LM (full or LoRA) — the llm-finetune trainer container.

CPU recipe (about a minute on 2 cores; a tiny Llama, a tokenizer trained in-process and a
synthetic arithmetic set, nothing downloaded):

    python -m trainers.llm --preset debug

Real run: python -m trainers.llm --preset qwen2.5-7b-lora --data gs://b/train.jsonl --lora
Every config field can be set with --set section.field=value (e.g. --set optim.lr=1e-4).
"""

from __future__ import annotations

import argparse
import os
import sys

from trainers.common.records import DataError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m trainers.llm",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        default="debug",
        help="debug | llama-3.2-1b | llama-3.1-8b-lora | "
        "qwen2.5-0.5b | qwen2.5-7b-lora (default: debug)",
    )
    p.add_argument("--data", help="training records: JSONL or Parquet, local, gs:// or /gcs/")
    p.add_argument("--eval-data", help="eval records (default: a content-hash split of --data)")
    p.add_argument(
        "--output-dir", help="final model (default: $AIP_MODEL_DIR, else ./outputs/model)"
    )
    p.add_argument(
        "--checkpoint-dir",
        help="checkpoints (default: $AIP_CHECKPOINT_DIR, else ./outputs/checkpoints)",
    )
    p.add_argument("--max-steps", type=int, help="optimizer steps")
    p.add_argument("--seed", type=int)
    p.add_argument("--lora", action="store_true", help="train LoRA adapters instead of all weights")
    p.add_argument("--wandb-project")
    p.add_argument(
        "--wandb-secret",
        help="Secret Manager version holding the W&B API key, "
        "projects/P/secrets/NAME/versions/latest",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.FIELD=VALUE",
        help="override any config field (repeatable)",
    )
    return p


def resolve_config(args: argparse.Namespace):
    """The preset, then the flags, then --set overrides, validated."""
    from trainers.common.config import apply_overrides
    from trainers.llm.presets import get_preset

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
    from trainers.llm.train import train

    relaunch_under_torchrun("trainers.llm", argv)
    try:
        train(cfg, callbacks=callbacks)
    except DataError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except Preempted as err:
        print(str(err), file=sys.stderr, flush=True)
        return PREEMPTED_EXIT_CODE
    return 0


if __name__ == "__main__":
    sys.exit(main())
