"""What ARR-COC saves the language model per question: tokens in and seconds of the LM at
budgets of 100/50/25/10 % of the visual tokens, against the base model on all tokens, as ratios
from one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/arr_coc.py [--questions 64] [--repeats 5]
        [--model DIR] [--batch-size 1] [--threads 1] [--json results.json]

Per question (a rendered debug scene, or --batch-size of them at once), on the same encoded
inputs and in turn, so that a busy neighbour slows every side alike:

- `all tokens` (the baseline): the LM over every visual token, and the base Qwen3-VL's own
  forward (vision tower and LM);
- `budget P%`: the LM over the cells the relevance head kept (`selection.forward_kept`), and
  the whole ARR-COC forward (vision tower, relevance head, selection and LM) beside it: the
  tower still sees every patch, so the LM's share of the cost bounds the saving.

Reported per side: LM input tokens per question (text and kept visual tokens), the median
seconds per question of the LM and of the whole forward, and each as a ratio to all tokens.
The model is the debug preset's tiny Qwen3-VL built from its config (seeded, untrained: the cost
does not depend on what it learned) with a fresh relevance head, or a trained `--model DIR`
(trainers.arr_coc.saved). One torch thread by default: on a small shared machine a second
OpenMP thread stalls whenever another process takes a core.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import sys
import time
from pathlib import Path

# Run as a file, the repository root is not on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from trainers.arr_coc import selection  # noqa: E402
from trainers.arr_coc.data import encode_located  # noqa: E402
from trainers.arr_coc.inputs import collate  # noqa: E402
from trainers.arr_coc.scenes import scene_records  # noqa: E402

BUDGETS = (1.0, 0.5, 0.25, 0.1)


def load_model(model_dir: str | None):
    """(ArrCoc in eval mode, Base): a saved model, or the debug preset's, built."""
    from trainers.arr_coc import saved
    from trainers.arr_coc.presets import debug
    from trainers.arr_coc.train import initial_model, record_texts

    if model_dir:
        model, base, _ = saved.load(model_dir)
        return model, base
    cfg = debug()
    model, base = initial_model(cfg, texts=record_texts(scene_records(64, seed=0)))
    return model.eval(), base


def batches(base, *, num_questions: int, batch_size: int) -> list:
    located = [(f"scene:{i}", r) for i, r in enumerate(scene_records(num_questions, seed=7))]
    examples = encode_located(base, located)
    pad = base.tokenizer.pad_token_id
    return [
        collate(examples[i : i + batch_size], pad_id=pad)
        for i in range(0, len(examples), batch_size)
    ]


def timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


@torch.no_grad()
def measure(model, batch) -> dict[str, dict]:
    """One batch on every side: {side: {"tokens", "lm_s", "forward_s"}}."""
    vlm = model.vlm
    visual = selection.prepare(vlm, batch, image_token_id=model.image_token_id)
    relevance = model.relevance(batch)
    every = [torch.arange(s.numel()) for s in relevance.scores]
    row = {"all tokens": _lm_side(vlm, batch, visual, every)}
    row["all tokens"]["forward_s"] = timed(functools.partial(vlm, **batch.model_inputs()))
    for budget in BUDGETS:
        alloc = model.allocate(relevance, budget=budget, adaptive=False)
        side = _lm_side(vlm, batch, visual, alloc.indices)
        side["forward_s"] = timed(functools.partial(model, batch, budget=budget))
        row[f"budget {budget:.0%}"] = side
    return row


def _lm_side(vlm, batch, visual, indices: list) -> dict:
    """The LM over the kept tokens only: its input tokens and seconds."""
    kept = selection.cut(
        batch, positions=visual.positions, indices=indices, image_token_id=visual.image_token_id
    )
    gates = [torch.ones(len(i)) for i in indices]
    run = functools.partial(
        selection.forward_kept, vlm, batch, visual=visual, indices=indices, gates=gates
    )
    return {"tokens": int(kept.attention_mask.sum()), "lm_s": timed(run)}


def run(args) -> dict[str, dict]:
    torch.set_num_threads(args.threads)
    model, base = load_model(args.model)
    data = batches(base, num_questions=args.questions, batch_size=args.batch_size)
    measure(model, data[0])  # warm-up: first calls allocate and pick kernels
    rows = [measure(model, batch) for _ in range(args.repeats) for batch in data]
    return summarise(rows, num_questions=args.questions, repeats=args.repeats)


def summarise(rows: list[dict], *, num_questions: int, repeats: int) -> dict[str, dict]:
    per_q = len(rows) / (num_questions * repeats)  # batches per question
    sides = {}
    for side in rows[0]:
        sides[side] = {
            "tokens_per_question": sum(r[side]["tokens"] for r in rows) / (num_questions * repeats),
            "lm_ms": 1e3 * statistics.median(r[side]["lm_s"] for r in rows) * per_q,
            "forward_ms": 1e3 * statistics.median(r[side]["forward_s"] for r in rows) * per_q,
        }
    base = sides["all tokens"]
    for values in sides.values():
        for key in ("tokens_per_question", "lm_ms", "forward_ms"):
            values[f"{key}_ratio"] = values[key] / base[key]
    return sides


def table(sides: dict[str, dict]) -> str:
    lines = [
        "| side | LM tokens / question | ratio | LM ms / question | ratio | forward ms | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for side, v in sides.items():
        lines.append(
            f"| {side} | {v['tokens_per_question']:.1f} | {v['tokens_per_question_ratio']:.2f} "
            f"| {v['lm_ms']:.2f} | {v['lm_ms_ratio']:.2f} "
            f"| {v['forward_ms']:.2f} | {v['forward_ms_ratio']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="benchmarks/arr_coc.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--model", help="a saved ARR-COC model directory (default: debug, built)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the numbers here")
    args = parser.parse_args(argv)
    sides = run(args)
    print(table(sides))
    if args.json:
        Path(args.json).write_text(json.dumps(sides, indent=2))


if __name__ == "__main__":
    main()
