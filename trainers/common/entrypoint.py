"""The command line every trainer entrypoint shares (`python -m trainers.llm`, `trainers.vlm`,
`trainers.arr_coc`): the same flags plus a trainer's own (`Flag`: one config field each), the
preset then a recipe file (`--config`) then flags then `--set` overrides,
`--print-config` (the resolved config as a recipe), the torchrun relaunch, and exit codes (2: bad
config, 1: bad data or a failure, 143 with a checkpoint: SIGTERM).

    CLI = TrainerCli(module="trainers.vlm", description=__doc__, presets="debug | ...",
                     data_help=..., lora_help=..., get_preset=get_preset, train=_train)
    parser, resolve_config, main = CLI.parser, CLI.resolve_config, CLI.main
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from trainers.common.config import (
    ConfigError,
    apply_overrides,
    apply_recipe,
    flat_fields,
    read_recipe,
    to_recipe,
)
from trainers.common.logs import log
from trainers.common.records import DataError
from trainers.common.secrets import HF_TOKEN_ENV, check_secret_name, export_secret


@dataclass(frozen=True)
class Flag:
    """A trainer's own flag, setting one config field (validated there, so a bad value is the
    field's one-line error, exit 2)."""

    name: str  # "--stage"
    field: str  # "relevance.stage"
    help: str
    metavar: str | None = None


@dataclass(frozen=True)
class TrainerCli:
    """One trainer's command line: its names and help, and what it resolves and trains with.

    `train(cfg, *, callbacks)` imports the trainer's torch code when called, so `--help`
    stays instant."""

    module: str  # "trainers.vlm": `python -m MODULE`, and what torchrun re-runs
    description: str  # the entrypoint's docstring: the recipe --help opens with
    presets: str  # the preset names, for --help
    data_help: str
    lora_help: str
    get_preset: Callable
    train: Callable
    flags: tuple[Flag, ...] = ()

    def parser(self) -> argparse.ArgumentParser:
        p = trainer_parser(
            prog=f"python -m {self.module}",
            description=self.description,
            presets=self.presets,
            data_help=self.data_help,
            lora_help=self.lora_help,
        )
        for flag in self.flags:
            p.add_argument(flag.name, dest=_dest(flag), metavar=flag.metavar, help=flag.help)
        return p

    def resolve_config(self, args: argparse.Namespace):
        """The preset, then the flags, then --set overrides, validated."""
        return resolve_config(args, self.get_preset)

    def main(self, argv: list[str] | None = None, *, callbacks=()) -> int:
        return run(
            self.module,
            argv,
            parser=self.parser(),
            get_preset=self.get_preset,
            train=self.train,
            callbacks=callbacks,
        )


def _dest(flag: Flag) -> str:
    # Namespaced so the field a flag sets can be read back by name (see _flag_overrides).
    return "field:" + flag.field


def trainer_parser(
    *, prog: str, description: str, presets: str, data_help: str, lora_help: str
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--preset", help=f"{presets} (default: the recipe's, else debug)")
    p.add_argument(
        "--config",
        metavar="RECIPE.yaml",
        help="a recipe: YAML of config fields as --set names them (optim: {lr: 1e-4}) and "
        "optionally the preset it starts from; flags and --set override it",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as a recipe (for --config) and exit",
    )
    p.add_argument("--data", help=data_help)
    p.add_argument("--eval-data", help="eval records (default: a content-hash split of --data)")
    p.add_argument(
        "--output-dir", help="final model (default: $AIP_MODEL_DIR, else ./outputs/model)"
    )
    p.add_argument(
        "--checkpoint-dir",
        help="checkpoints (default: $AIP_CHECKPOINT_DIR, else this run's own: "
        "./outputs/checkpoints/<trainer>-<key of its settings and data>); a checkpoint of "
        "other settings there is refused",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="start over: remove the checkpoints in the checkpoint directory instead of "
        "resuming from them (checkpoint.resume=false)",
    )
    p.add_argument("--max-steps", type=int, help="optimizer steps")
    p.add_argument("--seed", type=int, help="random seed (data order, initial weights)")
    p.add_argument("--lora", action="store_true", help=lora_help)
    p.add_argument("--wandb-project", help="W&B project of the run")
    p.add_argument(
        "--wandb-secret",
        help="Secret Manager version holding the W&B API key, "
        "projects/P/secrets/NAME/versions/latest",
    )
    p.add_argument(
        "--hf-secret",
        help="Secret Manager version holding a Hugging Face token (gated models), read at "
        "start with the job's credentials",
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
    """The preset (--preset, else the recipe's, else debug), then the recipe (--config), then
    the flags, then --set overrides, validated."""
    return _resolve(args, get_preset)[0]


def _resolve(args: argparse.Namespace, get_preset: Callable) -> tuple:
    """The config and the name of the preset it started from."""
    recipe = read_recipe(args.config) if args.config else {}
    flags = {
        "data.train": args.data,
        "data.eval": args.eval_data,
        "output_dir": args.output_dir or os.environ.get("AIP_MODEL_DIR") or "./outputs/model",
        # None: the config's, "" by default, which makes a directory of the run's own.
        "checkpoint.dir": args.checkpoint_dir or os.environ.get("AIP_CHECKPOINT_DIR"),
        "checkpoint.resume": False if args.no_resume else None,
        "train.max_steps": args.max_steps,
        "train.seed": args.seed,
        "lora.enabled": True if args.lora else None,
        "wandb.project": args.wandb_project,
        "wandb.secret": args.wandb_secret,
        **_flag_overrides(args),
    }
    # A recipe's own directories win over the built-in defaults (not over flags or Vertex's).
    for name in ("output_dir", "checkpoint.dir"):
        if name in flat_fields(recipe) and not (getattr(args, name.replace(".", "_"), None)):
            flags[name] = _vertex_dir(name)
    overrides = [f"{k}={v}" for k, v in flags.items() if v is not None]
    preset = args.preset or recipe.get("preset") or "debug"
    cfg = apply_recipe(get_preset(preset), recipe, source=args.config)
    return apply_overrides(cfg, overrides + args.set), preset


def _flag_overrides(args: argparse.Namespace) -> dict:
    """A trainer's own flags (TrainerCli.flags) as the fields they set."""
    return {k.removeprefix("field:"): v for k, v in vars(args).items() if k.startswith("field:")}


def _vertex_dir(name: str) -> str | None:
    return os.environ.get(
        {"output_dir": "AIP_MODEL_DIR", "checkpoint.dir": "AIP_CHECKPOINT_DIR"}[name]
    )


def run(
    module: str,
    argv: list[str] | None,
    *,
    parser: argparse.ArgumentParser,
    get_preset: Callable,
    train: Callable,
    callbacks=(),
) -> int:
    """Parse, resolve, re-launch under torchrun when more than one process is wanted, train.

    The one error rule: a user error is one `error:` line without a traceback, wherever in the
    run it is found: a bad setting (`ConfigError`) exits 2, bad input data (`DataError`) 1, and
    so do a run that diverged (`Diverged`) and storage that stayed down (`StorageError`).
    Anything else is a failure or a bug and keeps its traceback (exit 1)."""
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    try:
        cfg, preset = _resolve(args, get_preset)
        for flag, value in (("--wandb-secret", cfg.wandb.secret), ("--hf-secret", args.hf_secret)):
            if value:  # a key passed by mistake is refused before anything could show it
                check_secret_name(value, what=flag)
        if args.print_config:
            comment = f"python -m {module} --config THIS.yaml"
            print(to_recipe(cfg, preset=preset, comment=comment), end="")
            return 0
        # Before the relaunch: torchrun's workers inherit the token, and the secret is read once.
        export_secret(args.hf_secret, variable=HF_TOKEN_ENV)
    except ConfigError as err:
        return _user_error(err, exit_code=2)
    from trainers.common.distributed import relaunch_under_torchrun
    from trainers.common.divergence import Diverged
    from trainers.common.preemption import PREEMPTED_EXIT_CODE, Preempted
    from trainers.common.storage import StorageError

    relaunch_under_torchrun(module, argv)
    try:
        train(cfg, callbacks=callbacks)
    except ConfigError as err:
        return _user_error(err, exit_code=2)
    except (DataError, Diverged, StorageError) as err:
        return _user_error(err, exit_code=1)
    except Preempted as err:
        log(str(err), severity="WARNING")
        return PREEMPTED_EXIT_CODE
    return 0


def _user_error(err: Exception, *, exit_code: int) -> int:
    # One write (log's): under torchrun every rank shares this stderr.
    log(f"error: {err}", severity="ERROR")
    return exit_code
