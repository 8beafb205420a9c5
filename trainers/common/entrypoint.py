"""The command line every trainer entrypoint shares (`python -m trainers.llm`, `trainers.vlm`):
the same flags, the preset then flags then `--set` overrides, the torchrun relaunch, and exit
codes (2: bad config, 1: bad data, 143 with a checkpoint: SIGTERM).

    def main(argv=None, *, callbacks=()):
        return run("trainers.vlm", argv, parser=parser(), get_preset=get_preset, train=train)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from trainers.common.records import DataError


def trainer_parser(
    *, prog: str, description: str, presets: str, data_help: str, lora_help: str
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", default="debug", help=f"{presets} (default: debug)")
    p.add_argument("--data", help=data_help)
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
    p.add_argument("--lora", action="store_true", help=lora_help)
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


def resolve_config(args: argparse.Namespace, get_preset: Callable):
    """The preset, then the flags, then --set overrides, validated."""
    from trainers.common.config import apply_overrides

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


def run(
    module: str,
    argv: list[str] | None,
    *,
    parser: argparse.ArgumentParser,
    get_preset: Callable,
    train: Callable,
    callbacks=(),
    data_errors: tuple[type[Exception], ...] = (DataError,),
) -> int:
    """Parse, resolve, re-launch under torchrun when more than one process is wanted, train;
    `data_errors` end the run with one `error:` line and exit code 1."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    try:
        cfg = resolve_config(args, get_preset)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from trainers.common.distributed import relaunch_under_torchrun
    from trainers.common.preemption import PREEMPTED_EXIT_CODE, Preempted

    relaunch_under_torchrun(module, argv)
    try:
        train(cfg, callbacks=callbacks)
    except data_errors as err:
        # One write: under torchrun every rank shares this stderr, and print's separate
        # newline write lets two ranks' lines run together.
        sys.stderr.write(f"error: {err}\n")
        sys.stderr.flush()
        return 1
    except Preempted as err:
        print(str(err), file=sys.stderr, flush=True)
        return PREEMPTED_EXIT_CODE
    return 0
