"""A rough, test-free training loop over the debug scenes: can each stage reach the issue's
targets on a CPU, and in how many steps? A measurement, not the trainer (which plugs the stages
into the one loop of `trainers.common`).

    python -m trainers.arr_coc.probe --base-steps 600 --stage-steps 150,150,100 --json

Phases: 0) the tiny Qwen3-VL learns the scenes with every visual token (the debug base model:
nothing downloaded means nothing pretrained); 1) where to look: the relevance head against the
masks, VLM frozen; 2) participatory: answer CE at the budget through the gates (the LM too
when --lm-trains); 3) procedural: hard scenes, adaptive budget. After each phase: accuracy at
100/50/25/10 % of the visual tokens for ARR-COC, random-K and a uniform grid, precision@K and
recall@K against the masks, and the seconds per step.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import torch

from trainers.arr_coc import allocation as alloc_lib
from trainers.arr_coc.config import BaseConfig, RelevanceConfig
from trainers.arr_coc.inputs import collate, encode
from trainers.arr_coc.losses import answer_ce
from trainers.arr_coc.metrics import answer_metrics, mask_metrics
from trainers.arr_coc.model import ArrCoc
from trainers.arr_coc.qwen import build_scratch
from trainers.arr_coc.records import load_images
from trainers.arr_coc.scenes import HARD, NORMAL, scene_records, scene_texts
from trainers.arr_coc.stages import set_trainable, stage_step
from trainers.lm.config import LoraConfig

BUDGETS = (1.0, 0.5, 0.25, 0.1)
WAYS_TO_PICK = ("arr_coc", "random", "grid")


def encode_all(base, records: list[dict]) -> list:
    examples = []
    for i, record in enumerate(records):
        image, mask = load_images(record, where=f"scene {i}", base_dir=".")
        examples.append(
            encode(
                base, image=image, question=record["question"], answer=record["answer"], mask=mask
            )
        )
    return examples


def batches(examples, *, size: int, steps: int, seed: int, pad_id: int):
    rng = random.Random(seed)
    for _ in range(steps):
        yield collate(rng.sample(examples, size), pad_id=pad_id)


def train_base(base, examples, *, steps: int, lr: float, batch_size: int, log) -> float:
    """Phase 0: every weight of the tiny Qwen3-VL, every visual token. Seconds per step."""
    model = base.model.train()
    model.requires_grad_(True)
    optim = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = _schedule(optim, steps)
    start = time.perf_counter()
    for step, batch in enumerate(
        batches(examples, size=batch_size, steps=steps, seed=0, pad_id=base.tokenizer.pad_token_id),
        1,
    ):
        sums, counts = answer_ce(model(**batch.model_inputs()).logits, batch.labels)
        loss = sums.sum() / counts.sum()
        _update(optim, schedule, loss, model.parameters())
        if step % 100 == 0:
            log(f"base step {step}: loss {loss.item():.3f}")
    model.eval()
    return (time.perf_counter() - start) / max(1, steps)


def train_stage(
    model: ArrCoc,
    examples,
    *,
    stage: int,
    steps: int,
    lr: float,
    batch_size: int,
    lm_trains: bool,
    log,
) -> float:
    """Phases 1-3: the relevance head (and the LM in full with `lm_trains`). Seconds per step."""
    params = set_trainable(model, stage=stage, lora=LoraConfig(enabled=False))
    if lm_trains and stage != 1:
        model.vlm.model.language_model.requires_grad_(True)
        params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr)
    schedule = _schedule(optim, steps)
    model.train()
    start = time.perf_counter()
    pad = model.vlm.config.text_config.pad_token_id
    for step, batch in enumerate(
        batches(examples, size=batch_size, steps=steps, seed=stage, pad_id=pad), 1
    ):
        result = stage_step(model, batch, stage=stage)
        _update(optim, schedule, result.loss_sum / result.num_targets, params)
        if step % 50 == 0:
            shown = {
                k: round(v, 3)
                for k, v in result.metrics.items()
                if k.startswith(("loss/", "answer/", "relevance/recall", "allocation/mean"))
            }
            log(f"stage {stage} step {step}: {shown}")
    model.eval()
    return (time.perf_counter() - start) / max(1, steps)


def _schedule(optim, steps: int):
    warmup = max(1, steps // 20)
    return torch.optim.lr_scheduler.LambdaLR(optim, lambda s: min(1.0, (s + 1) / warmup))


def _update(optim, schedule, loss, params) -> None:
    optim.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(list(params), 1.0)
    optim.step()
    schedule.step()


@torch.no_grad()
def evaluate(model: ArrCoc, examples, *, batch_size: int = 50) -> dict:
    """Accuracy per way of picking and budget; precision/recall@K of ARR-COC's picks."""
    pad = model.vlm.config.text_config.pad_token_id
    generator = torch.Generator().manual_seed(0)
    table: dict = {}
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start : start + batch_size], pad_id=pad)
        relevance = model.relevance(batch)
        shapes = [tuple(s.shape) for s in relevance.scores]
        for budget in BUDGETS:
            picks = {
                "arr_coc": model.allocate(relevance, budget=budget, adaptive=False),
                "random": alloc_lib.random_allocation(
                    [h * w for h, w in shapes], budget=budget, generator=generator
                ),
                "grid": alloc_lib.grid_allocation(shapes, budget=budget),
            }
            for way, alloc in picks.items():
                out = model(batch, allocation=alloc)
                n = batch.num_examples
                row = table.setdefault(f"{way}@{budget:g}", {"n": 0, "accuracy": 0.0})
                row["accuracy"] += answer_metrics(out)["answer/accuracy"] * n
                row["n"] += n
                masked = mask_metrics(
                    relevance.scores, indices=alloc.indices, cell_masks=batch.cell_masks
                )
                for key, value in masked.items():
                    row[key] = row.get(key, 0.0) + value * n
        out = model(batch, adaptive=True)
        row = table.setdefault("arr_coc@adaptive", {"n": 0, "accuracy": 0.0, "tokens": 0.0})
        row["accuracy"] += answer_metrics(out)["answer/accuracy"] * batch.num_examples
        row["tokens"] += sum(out.allocation.num_kept)
        row["n"] += batch.num_examples
    return {
        k: {m: round(v / row["n"], 3) for m, v in row.items() if m != "n"}
        for k, row in table.items()
    }


def table(evaluation: dict) -> str:
    """Accuracy (and recall@K of the referred object's cells) per budget, as markdown."""
    lines = ["| budget | " + " | ".join(WAYS_TO_PICK) + " |", "|---|" + "---|" * len(WAYS_TO_PICK)]
    for budget in BUDGETS:
        cells = []
        for way in WAYS_TO_PICK:
            row = evaluation[f"{way}@{budget:g}"]
            cells.append(
                f"{row['accuracy']:.3f} (recall {row.get('relevance/recall_at_k', 0):.2f})"
            )
        lines.append(f"| {budget:.0%} | " + " | ".join(cells) + " |")
    adaptive = evaluation["arr_coc@adaptive"]
    lines.append(f"| adaptive ({adaptive['tokens']:.1f} tokens) | {adaptive['accuracy']:.3f} | | |")
    return "\n".join(lines)


def time_steps(base, examples, *, batch_size: int, repeats: int = 5) -> dict[str, float]:
    """Median seconds of one forward+backward on a batch: the base model over every token, and
    each stage (stage 2 also with the distillation pass)."""
    model = ArrCoc(base, RelevanceConfig(budget=0.25))
    batch = collate(examples[:batch_size], pad_id=base.tokenizer.pad_token_id)
    runs = {"base_all_tokens": lambda: _base_loss(base, batch)}
    for stage in (1, 2, 3):
        runs[f"stage{stage}"] = lambda stage=stage: _stage_loss(model, batch, stage)
    distilling = ArrCoc(base, RelevanceConfig(budget=0.25, distill_weight=1.0))
    runs["stage2_distill"] = lambda: _stage_loss(distilling, batch, 2)
    base.model.requires_grad_(True)
    return {name: _median_seconds(run, repeats) for name, run in runs.items()}


def _base_loss(base, batch) -> torch.Tensor:
    sums, counts = answer_ce(base.model(**batch.model_inputs()).logits, batch.labels)
    return sums.sum() / counts.sum()


def _stage_loss(model: ArrCoc, batch, stage: int) -> torch.Tensor:
    result = stage_step(model, batch, stage=stage)
    return result.loss_sum / result.num_targets


def _median_seconds(run, repeats: int) -> float:
    seconds = []
    for _ in range(repeats + 1):  # the first is a warm-up
        start = time.perf_counter()
        run().backward()
        seconds.append(time.perf_counter() - start)
    return round(sorted(seconds[1:])[repeats // 2], 4)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m trainers.arr_coc.probe")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--eval", type=int, default=200)
    parser.add_argument("--base-steps", type=int, default=600)
    parser.add_argument("--base-lr", type=float, default=2e-3)
    parser.add_argument("--stage-steps", default="150,150,100")
    parser.add_argument("--stage-lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lm-trains", action="store_true", help="stages 2-3 train the LM in full")
    parser.add_argument("--distill", type=float, default=0.0)
    parser.add_argument("--text-hidden", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--time-only", action="store_true", help="forward+backward seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    report = run(args, log=lambda text: print(text, flush=True))
    if args.json:
        print(json.dumps(report))


def run(args, *, log) -> dict:
    base = build_scratch(BaseConfig(text_hidden=args.text_hidden), texts=scene_texts(), seed=0)
    data = scene_data(base, num_train=args.train, num_eval=args.eval)
    if args.time_only:
        return time_steps(base, data["train"], batch_size=args.batch_size)
    report: dict = {"args": vars(args)}
    # The base learns normal and hard scenes alike: stage 3's scenes are new to ARR-COC only.
    report["base_s_per_step"] = train_base(
        base,
        data["train"] + data["hard_train"],
        steps=args.base_steps,
        lr=args.base_lr,
        batch_size=args.batch_size,
        log=log,
    )
    model = ArrCoc(base, RelevanceConfig(budget=0.25, distill_weight=args.distill))
    for name in ("eval", "hard_eval"):
        report[f"base_{name}"] = evaluate(model, data[name])
        log(f"the base on {name}:\n" + table(report[f"base_{name}"]))
    steps = [int(s) for s in args.stage_steps.split(",")]
    for stage, num_steps in zip((1, 2, 3), steps, strict=True):
        train, held = ("hard_train", "hard_eval") if stage == 3 else ("train", "eval")
        report[f"stage{stage}_s_per_step"] = train_stage(
            model,
            data[train],
            stage=stage,
            steps=num_steps,
            lr=args.stage_lr,
            batch_size=args.batch_size,
            lm_trains=args.lm_trains,
            log=log,
        )
        report[f"after_stage{stage}"] = evaluate(model, data[held])
        log(f"after stage {stage} on {held}:\n" + table(report[f"after_stage{stage}"]))
    return report


def scene_data(base, *, num_train: int, num_eval: int) -> dict[str, list]:
    """Encoded normal and hard scenes (half as many hard ones), train and eval."""
    scenes = scene_records(num_train + num_eval, seed=0, spec=NORMAL)
    hard = scene_records(num_train // 2 + num_eval, seed=1, spec=HARD)
    return {
        "train": encode_all(base, scenes[num_eval:]),
        "eval": encode_all(base, scenes[:num_eval]),
        "hard_train": encode_all(base, hard[num_eval:]),
        "hard_eval": encode_all(base, hard[:num_eval]),
    }


if __name__ == "__main__":
    main()
