"""What a trainer hands the one training loop: a task object (torchtitan's TrainSpec idea).

    class VLMTask(TrainTask):               # trainers/vlm/train.py
        def __init__(self, cfg, dist): ...  # data, tokenizer, model on dist.device
        def micro_batches(self, step): ...
        ...
    metadata = trainers.common.loop.train(cfg, VLMTask)

The loop (trainers.common.loop) owns what every trainer shares: the process group and W&B run,
the optimizer and schedule, DDP and torch.compile, gradient accumulation with `no_sync`, the
loss normalised by the global batch's targets, clipping, throughput/MFU/memory metrics, eval
logging, checkpoints and exact resume, SIGTERM, the model directory and its W&B artifacts. A
task says only what is its own: which micro-batches a step trains on, the summed loss of one,
what a step counts, its FLOPs, its evaluation, what its checkpoint and model directory hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from trainers.common import checkpoint
from trainers.common.distributed import Dist


@dataclass
class MicroLoss:
    """The loss of one micro-batch, summed over its targets (the loop scales it by the global
    batch's target count), and extra sums to log (summed over micro-batches, ranks and the
    logging window; `TrainTask.train_metrics` turns them into metrics). Every micro-batch of
    a task gives the same `sums` keys: the ranks sum them as one list."""

    loss: torch.Tensor
    sums: dict[str, float] = field(default_factory=dict)


@dataclass
class Run:
    """A run in progress, as the loop keeps it and a task's hooks see it."""

    cfg: object  # the trainer's config: train., optim., checkpoint., wandb. sections and more
    dist: Dist
    task: TrainTask
    engine: torch.nn.Module  # what runs the training forward (DDP and/or compiled)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    tracker: object
    peak_flops: float | None  # of one device; None: no MFU
    step: int = 0
    totals: dict[str, int] = field(default_factory=dict)  # "tokens_seen": ..., checkpointed
    # The last value of each eval and end-of-run metric and of train/loss: the final metrics.
    history: dict = field(default_factory=dict)
    skipped_steps: int = 0  # steps with a non-finite loss or gradient, not applied
    # What makes this run's checkpoints resumable (trainers.common.resumable), once computed.
    fingerprint: dict = field(default_factory=dict)

    @property
    def autocast(self) -> bool:
        """bf16 autocast: on CUDA unless `train.precision=fp32`, or wherever it says bf16."""
        precision = self.cfg.train.precision
        return precision == "bf16" or (precision == "auto" and self.dist.device.startswith("cuda"))

    def log(self, metrics: dict) -> None:
        """Log at the current step, and keep them as final metrics."""
        self.history.update(metrics)
        self.tracker.log(metrics, step=self.step)


def total_key(metric: str) -> str:
    """A running total's name in checkpoints and the metadata: "train/tokens_seen" ->
    "tokens_seen"."""
    return metric.rsplit("/", 1)[-1]


class TrainTask:
    """One trainer's part of a run. The constructor (`Task(cfg, dist)`) builds the data and
    the model: `self.model`, unwrapped (what is saved and evaluated), on `dist.device`, in
    train mode, with `requires_grad` marking what trains. A task defines the methods that
    raise NotImplementedError here; the others have defaults."""

    model: torch.nn.Module
    train_records: list[dict]  # logged as the run's dataset artifact
    # Per-step counts (see `counts`) logged per second as train/<name>_per_s.
    rates: tuple[str, ...] = ("tokens",)
    # Per-step counts summed over the run: count -> metric. The metric's last part names the
    # total in checkpoints and the metadata ("train/tokens_seen" -> tokens_seen).
    totals: dict[str, str] = {"tokens": "train/tokens_seen"}
    compile: bool = False  # wrap the training forward in torch.compile

    def micro_batches(self, step: int) -> list:
        """This rank's micro-batches of the global batch of optimizer step `step`, in order;
        the same `step` gives the same batches on a resumed run."""
        raise NotImplementedError

    def counts(self, batches: list) -> dict[str, float]:
        """What this rank's `batches` hold: "targets" (loss positions) and "tokens" at least;
        the loop sums each over the ranks."""
        raise NotImplementedError

    def loss(self, engine: torch.nn.Module, batch) -> MicroLoss:
        """The summed loss of one micro-batch, run through `engine` (the model, maybe wrapped
        in DDP or compiled); called inside the loop's autocast."""
        raise NotImplementedError

    def flops(self, counts: dict[str, float]) -> float:
        """Model FLOPs of training on `counts` (summed over steps and ranks), for MFU."""
        raise NotImplementedError

    def eval_sums(self, run: Run) -> dict[str, float]:
        """This rank's share of the eval split: summed "loss" over "targets" positions, and any
        other sums, logged under their own names once summed over the ranks."""
        raise NotImplementedError

    def metadata(self, run: Run) -> dict:
        """What this trainer adds to `training_metadata.json` (a "dataset" section at least,
        with the training records' "fingerprint")."""
        raise NotImplementedError

    def write_model_dir(self, local: str) -> None:
        """The trained model (HF `save_pretrained` and what loads with it) into `local`."""
        raise NotImplementedError

    def ddp_options(self, dist: Dist) -> dict:
        """Keyword arguments for DistributedDataParallel."""
        return {"gradient_as_bucket_view": True}

    def check_step(self, counts: dict[str, float], batches: list) -> None:
        """Raise (on every rank at once) when the step's counts, summed over the ranks, say it
        must not train."""

    def train_metrics(self, window: dict[str, float]) -> dict[str, float]:
        """Metrics from a logging window's counts and extra sums (see `MicroLoss.sums`)."""
        return {}

    def start(self, run: Run, *, resumed: bool) -> None:
        """Before the first step (`resumed`: from a checkpoint), e.g. a baseline metric."""

    def finish(self, run: Run) -> None:
        """After the last step and the final eval loss: end-of-run metrics (`run.log`)."""

    def model_state(self) -> dict:
        """The model's part of a checkpoint; `load_model_state` takes it back."""
        return self.model.state_dict()

    def load_model_state(self, state: dict) -> None:
        self.model.load_state_dict(state)

    def extra_state(self) -> dict:
        """More checkpoint entries of this task's own; `load_extra_state` gets the whole
        checkpoint back. Tensors, numbers, strings, lists, tuples and dicts only: a checkpoint
        is safetensors and JSON, never a pickle (trainers.common.statefile)."""
        return {}

    def load_extra_state(self, shared: dict) -> None:
        pass

    def close(self) -> None:
        """Release what the task holds open (DataLoader workers)."""


class PartlyFrozenTask(TrainTask):
    """A task whose frozen weights are rebuilt from their source and seed: its checkpoints hold
    the trained weights only (a frozen 400M-parameter tower is not rewritten at every save), and
    a checkpoint of other trainable parameters is refused."""

    def model_state(self) -> dict:
        return checkpoint.trainable_state(self.model)

    def load_model_state(self, state: dict) -> None:
        checkpoint.load_trainable_state(self.model, state)
