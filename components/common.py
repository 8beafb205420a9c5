"""What the component tasks share: the trainer a step works for (its typed steps), the trainer's
command line from pipeline parameters, and the W&B settings every step of one pipeline run
agrees on (one group; the step name as job type).

    steps = trainer_steps("vlm")                  # trainers.vlm.steps.STEPS
    cfg = steps.config(trainer_argv(preset="debug", max_steps=7))
"""

from __future__ import annotations

import os

from trainers.arr_coc.steps import STEPS as ARR_COC
from trainers.common.logs import label_run
from trainers.common.steps import TrainerSteps
from trainers.common.tracking import Tracker, start_tracker
from trainers.llm.steps import STEPS as LLM
from trainers.vlm.steps import STEPS as VLM

TRAINERS: dict[str, TrainerSteps] = {steps.name: steps for steps in (LLM, VLM, ARR_COC)}


def trainer_steps(trainer: str) -> TrainerSteps:
    """The steps of the trainer the pipelines' `trainer` parameter names."""
    if trainer not in TRAINERS:
        raise ValueError(f"trainer: {trainer!r} must be one of {', '.join(TRAINERS)}")
    return TRAINERS[trainer]


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
    """Arguments of a trainer's command line (every trainer's is the same); zero/empty values
    keep the preset's own."""
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


def use_run_group(run_group: str, wandb_dir: str, *, step: str = "") -> None:
    """Point this process (and the trainer it starts) at the pipeline run's W&B group/dir,
    and label its log entries with the run and `step` (trainers/common/logs.py)."""
    label_run(run=run_group, step=step)
    if run_group:
        os.environ["WANDB_RUN_GROUP"] = run_group
    if wandb_dir:
        os.makedirs(wandb_dir, exist_ok=True)
        os.environ["WANDB_DIR"] = wandb_dir


def step_tracker(cfg, *, job_type: str, wandb_dir: str) -> Tracker:
    """The W&B run of one pipeline step, set up by the trainer config's `wandb` section."""
    from trainers.common.config import to_dict

    return start_tracker(
        enabled=cfg.wandb.enabled,
        project=cfg.wandb.project,
        config=to_dict(cfg),
        job_type=job_type,
        directory=wandb_dir or None,
        wandb_secret=cfg.wandb.secret or None,
    )
