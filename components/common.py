"""What the component tasks share: which trainer a step works for, the trainer's config from
pipeline parameters, and the W&B settings every step of one pipeline run agrees on (one group;
the step name as job type).
"""

from __future__ import annotations

import importlib
import os

from trainers.common.tracking import Tracker, start_tracker

# trainer -> the module, in each step's folder, that does that step's work for it.
TASKS = {"llm": "task", "vlm": "vlm"}


def check_trainer(trainer: str) -> str:
    if trainer not in TASKS:
        raise ValueError(f"trainer: {trainer!r} must be one of {', '.join(TASKS)}")
    return trainer


def trainer_task(step: str, *, trainer: str):
    """The task module of component `step` (e.g. "evaluate") for `trainer`."""
    return importlib.import_module(f"components.{step}.{TASKS[check_trainer(trainer)]}")


def trainer_argv(
    *,
    preset: str,
    data: str = "",
    eval_data: str = "",
    overrides: list[str] = (),
    max_steps: int = 0,
    seed: int = -1,
    lora: bool = False,
    wandb_project: str = "",
    wandb_secret: str = "",
) -> list[str]:
    """`python -m trainers.llm` (or `.vlm`: the same CLI) arguments; zero/empty values keep the
    preset's own."""
    argv = ["--preset", preset]
    pairs = {
        "--data": data,
        "--eval-data": eval_data,
        "--max-steps": max_steps if max_steps > 0 else "",
        "--seed": seed if seed >= 0 else "",
        "--wandb-project": wandb_project,
        "--wandb-secret": wandb_secret,
    }
    for flag, value in pairs.items():
        if value != "":
            argv += [flag, str(value)]
    if lora:
        argv.append("--lora")
    for item in overrides:
        argv += ["--set", item]
    return argv


def trainer_config(argv: list[str], *, trainer: str):
    """The resolved, validated config `python -m trainers.<trainer>` would run with `argv`."""
    entry = importlib.import_module(f"trainers.{check_trainer(trainer)}.__main__")
    return entry.resolve_config(entry.parser().parse_args(argv))


def use_run_group(run_group: str, wandb_dir: str) -> None:
    """Point this process (and the trainer it starts) at the pipeline run's W&B group/dir."""
    if run_group:
        os.environ["WANDB_RUN_GROUP"] = run_group
    if wandb_dir:
        os.makedirs(wandb_dir, exist_ok=True)
        os.environ["WANDB_DIR"] = wandb_dir


def step_tracker(cfg, *, job_type: str, wandb_dir: str) -> Tracker:
    from trainers.common.config import to_dict

    return start_tracker(
        enabled=cfg.wandb.enabled,
        project=cfg.wandb.project,
        config=to_dict(cfg),
        job_type=job_type,
        directory=wandb_dir or None,
        wandb_secret=cfg.wandb.secret or None,
    )
