"""The one training loop (trainers.common.loop) driven by a toy task: what any trainer's task,
ARR-COC's included, gets from it. A linear model on masked rows trains in milliseconds, so the
cases can check exact numbers: the update does not depend on how a step is split into
micro-batches, the task's counts, rates, totals and extra sums are logged, a checkpoint carries
the running totals and the task's own state and resumes exactly, and a step the task refuses
changes nothing."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import pytest
import torch

from trainers.common import checkpoint, loop
from trainers.common.batches import global_batch_rows, rank_micro_batches
from trainers.common.distributed import Dist
from trainers.common.preemption import StopFlag
from trainers.common.records import DataError
from trainers.common.sections import CheckpointConfig, OptimConfig, TrainConfig, WandbConfig
from trainers.common.task import MicroLoss, TrainTask
from trainers.common.tracking import NullTracker

NUM_ROWS, WIDTH, FEATURES = 32, 4, 3


@dataclass(kw_only=True)
class ToyData:
    train: str = ""
    refuse_step: int = -1  # the step whose batch the task refuses


@dataclass(kw_only=True)
class ToyConfig:
    preset: str = "toy"
    output_dir: str
    data: ToyData = field(default_factory=ToyData)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=0.1, warmup_steps=1))
    train: TrainConfig
    checkpoint: CheckpointConfig
    wandb: WandbConfig = field(default_factory=lambda: WandbConfig(enabled=False))


class ToyTask(TrainTask):
    """Regression on rows of 4 positions, of which row r has r % 4 + 1 with a target."""

    totals = {"tokens": "train/tokens_seen", "rows": "train/rows_seen"}

    def __init__(self, cfg: ToyConfig, dist: Dist) -> None:
        torch.manual_seed(cfg.train.seed)
        self.cfg, self.dist = cfg, dist
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(NUM_ROWS, WIDTH, FEATURES, generator=g)
        self.y = self.x @ torch.tensor([1.0, -2.0, 0.5])
        self.mask = torch.arange(WIDTH) <= (torch.arange(NUM_ROWS) % WIDTH)[:, None]
        self.model = torch.nn.Linear(FEATURES, 1, bias=False)
        self.train_records = [{"row": r} for r in range(NUM_ROWS)]
        self.started, self.calls = [], 0

    def micro_batches(self, step):
        train = self.cfg.train
        rows = global_batch_rows(
            step, num_rows=NUM_ROWS, global_batch=train.global_batch_size, seed=train.seed
        )
        return rank_micro_batches(rows, rank=0, world_size=1, micro_batch=train.micro_batch_size)

    def counts(self, batches):
        rows = [r for b in batches for r in b]
        targets = int(self.mask[rows].sum())
        return {"targets": targets, "tokens": targets, "rows": len(rows)}

    def check_step(self, counts, batches):
        if self.calls == self.cfg.data.refuse_step:
            raise DataError("toy: this batch is refused")

    def loss(self, engine, batch):
        self.calls += 1
        error = (engine(self.x[batch]).squeeze(-1) - self.y[batch]) * self.mask[batch]
        abs_error = float(error.detach().abs().sum())
        return MicroLoss(error.pow(2).sum(), sums={"abs_error": abs_error})

    def flops(self, counts):
        return 6 * FEATURES * counts["tokens"]

    def train_metrics(self, window):
        return {"train/mean_abs_error": window["abs_error"] / window["targets"]}

    def eval_sums(self, run):
        with torch.no_grad():
            error = (self.model(self.x).squeeze(-1) - self.y) * self.mask
        return {"loss": float(error.pow(2).sum()), "targets": int(self.mask.sum()), "eval/n": 1}

    def start(self, run, *, resumed):
        self.started.append(resumed)

    def extra_state(self):
        return {"toy_calls": self.calls}

    def load_extra_state(self, shared):
        self.calls = shared["toy_calls"]

    def metadata(self, run):
        return {"dataset": {"fingerprint": "toy"}}

    def write_model_dir(self, local):
        torch.save(self.model.state_dict(), f"{local}/toy.pt")


class Recorder(NullTracker):
    def __init__(self) -> None:
        super().__init__()
        self.logged, self.artifacts = [], []

    def log(self, metrics, *, step):
        self.logged.append((step, dict(metrics)))

    def use_artifact(self, *, name, type, uri, metadata=None):
        self.artifacts.append(("used", type))

    def log_artifact(self, *, name, type, uri, metadata=None, aliases=None):
        self.artifacts.append(("logged", type))


def _cfg(tmp_path, *, steps=6, micro=8, every=0, **data) -> ToyConfig:
    return ToyConfig(
        output_dir=str(tmp_path / "model"),
        data=ToyData(**data),
        train=TrainConfig(
            max_steps=steps,
            global_batch_size=8,
            micro_batch_size=micro,
            log_every=2,
            eval_every=3,
            exact_match_examples=0,
        ),
        checkpoint=CheckpointConfig(dir=str(tmp_path / "ckpt"), every_steps=every),
    )


def _train(cfg, *, callbacks=()) -> tuple[loop.Run, Recorder]:
    recorder = Recorder()
    run = loop.build_run(cfg, ToyTask, dist=Dist(), tracker=recorder)
    run.task.start(run, resumed=checkpoint.resume_run(run))
    loop.run_steps(run, StopFlag(), callbacks)
    return run, recorder


class _Crash(Exception):
    pass


def _crash_after(step: int):
    def callback(done: int) -> None:
        if done == step:
            raise _Crash

    return callback


def test_the_update_does_not_depend_on_the_micro_batch_split(tmp_path):
    whole, _ = _train(_cfg(tmp_path / "a", micro=8))
    split, _ = _train(_cfg(tmp_path / "b", micro=2))
    untrained = ToyTask(_cfg(tmp_path / "c"), Dist()).model.weight
    assert not torch.allclose(whole.task.model.weight, untrained)  # guard: it trained
    torch.testing.assert_close(split.task.model.weight, whole.task.model.weight)
    assert split.task.calls == 4 * whole.task.calls  # 4 micro-batches a step, not 1


def test_counts_rates_totals_and_extra_sums_are_logged(tmp_path):
    run, recorder = _train(_cfg(tmp_path))
    train = [(step, m) for step, m in recorder.logged if "train/loss" in m]
    assert [step for step, _ in train] == [2, 4, 6]
    rows = [r for s in range(6) for b in run.task.micro_batches(s) for r in b]
    tokens = int(run.task.mask[rows].sum())
    last = train[-1][1]
    assert last["train/tokens_seen"] == run.totals["tokens_seen"] == tokens
    assert last["train/rows_seen"] == run.totals["rows_seen"] == 6 * 8
    assert last["train/tokens_per_s"] > 0 and last["train/mean_abs_error"] > 0
    assert "train/mfu" not in last  # no peak FLOP/s on CPU
    evals = [m for _, m in recorder.logged if "eval/loss" in m]
    assert len(evals) == 2  # steps 3 and 6
    assert evals[-1]["eval/perplexity"] == pytest.approx(math.exp(evals[-1]["eval/loss"]))
    assert evals[-1]["eval/n"] == 1  # a task's own eval sum, under its own name
    assert run.history["train/loss"] == last["train/loss"]


def test_a_refused_step_changes_nothing(tmp_path):
    cfg = _cfg(tmp_path, refuse_step=0)
    run = loop.build_run(cfg, ToyTask, dist=Dist(), tracker=NullTracker())
    before = run.task.model.weight.detach().clone()
    with pytest.raises(DataError, match="toy: this batch is refused"):
        loop.train_step(run)
    assert run.step == 0 and run.totals == {"tokens_seen": 0, "rows_seen": 0}
    assert torch.equal(run.task.model.weight, before)


def test_a_checkpoint_carries_totals_history_and_task_state_and_resumes_exactly(tmp_path):
    reference, _ = _train(_cfg(tmp_path / "ref"))
    with pytest.raises(_Crash):  # as good as SIGKILL: nothing saved after step 4
        _train(_cfg(tmp_path / "run", every=4), callbacks=[_crash_after(5)])
    resumed, _ = _train(_cfg(tmp_path / "run", every=4))
    assert resumed.task.started == [True] and reference.task.started == [False]
    assert resumed.task.calls == reference.task.calls  # the task's own state came back
    assert resumed.totals == reference.totals
    assert torch.equal(resumed.task.model.weight, reference.task.model.weight)
    shared, _ = checkpoint.load(checkpoint.step_dir(str(tmp_path / "run" / "ckpt"), 4), rank=0)
    assert shared["rows_seen"] == 32 and shared["samples_seen"] == 32 and shared["toy_calls"] == 4


def test_finish_writes_the_model_directory_with_metadata_and_logs_artifacts(tmp_path):
    run, recorder = _train(_cfg(tmp_path))
    meta = loop.finish(run)
    on_disk = json.loads((tmp_path / "model" / "training_metadata.json").read_text())
    assert on_disk == json.loads(json.dumps(meta))
    assert meta["steps"] == 6 and meta["rows_seen"] == 48 and meta["dataset"]["fingerprint"]
    assert (tmp_path / "model" / "toy.pt").is_file()
    assert recorder.artifacts == [("used", "dataset"), ("logged", "model")]
