"""The ARR-COC trainer (`python -m trainers.arr_coc`) on the one loop: three chained stages on a
handful of rendered scenes, each improving its own objective; exact resume after SIGTERM per
stage, and after SIGKILL from the last committed checkpoint; DDP over 2 processes agreeing with
1; a stage never resuming another stage's checkpoint; one-line exit-2 errors for a bad --stage
and a missing --init-model; the end-of-stage metrics with the baselines, in W&B."""

import json
import signal

import pytest
import torch
from safetensors.torch import load_file

from tests.support.trainer_runs import ddp_env, run_trainer, trainer_env
from tests.support.wandb_records import find_run_files, isolate, read_run
from trainers.arr_coc.__main__ import main, parser, resolve_config
from trainers.arr_coc.train import ArrCocTask
from trainers.common import resumable
from trainers.common.preemption import PREEMPTED_EXIT_CODE

STEPS = 8
# A stage's eval loss after STEPS steps over before, at most: 1, masks and the scratch base's
# answer CE; 2, answer CE over the kept tokens and the frozen model's dense target; 3, 2 CE +
# 0.5 expected budget, where CE moves little on a base of 8 steps and the budget term is small
# beside it (its tokens are checked on their own).
MARGINS = {1: 0.8, 2: 0.8, 3: 0.99}
TINY = [
    "--preset",
    "debug",
    "--max-steps",
    str(STEPS),
    *("--set", "data.synthetic_examples=48"),
    *("--set", "data.hard_examples=24"),
    *("--set", "data.eval_fraction=0.25"),
    *("--set", "train.global_batch_size=8"),
    *("--set", "train.micro_batch_size=4"),
    *("--set", "train.eval_batches=2"),
    *("--set", "train.exact_match_examples=8"),
    *("--set", "train.log_every=2"),
    *("--set", "optim.warmup_steps=1"),
    *("--set", "optim.lr=0.01"),
    *("--set", "checkpoint.every_steps=4"),
    *("--set", "wandb.enabled=false"),
]


def _args(tmp, name: str, stage: int, *extra: str) -> list[str]:
    """Stage `stage` writing under tmp/name; stages 2 and 3 start from the previous stage's
    model there and train LoRA adapters too."""
    args = [*TINY, "--stage", str(stage), *extra]
    if stage > 1:
        args += ["--init-model", str(tmp / f"s{stage - 1}" / "model"), "--lora"]
    return args + [
        "--output-dir",
        str(tmp / name / "model"),
        "--checkpoint-dir",
        str(tmp / name / "ckpt"),
    ]


def _meta(model_dir) -> dict:
    return json.loads((model_dir / "training_metadata.json").read_text())


def _weights(model_dir) -> dict:
    """Everything a saved stage holds: the head and the base (LoRA merged in)."""
    head = load_file(str(model_dir / "head.safetensors"))
    base = load_file(str(model_dir / "base" / "model.safetensors"))
    return {
        **{f"head.{k}": v for k, v in head.items()},
        **{f"base.{k}": v for k, v in base.items()},
    }


@pytest.fixture(scope="module")
def stages(tmp_path_factory):
    """The three stages, chained, uninterrupted; stage 3 logs to an offline W&B run."""
    tmp = tmp_path_factory.mktemp("arr_coc")
    for stage in (1, 2):
        assert main(_args(tmp, f"s{stage}", stage)) == 0
    with pytest.MonkeyPatch.context() as patch:
        isolate(patch, tmp / "wandb")
        assert main(_args(tmp, "s3", 3, "--set", "wandb.enabled=true")) == 0
    return tmp


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_each_stage_improves_its_own_objective(stages, stage):
    meta = _meta(stages / f"s{stage}" / "model")
    final = meta["final"]
    assert meta["stage"] == stage and meta["steps"] == STEPS
    # The stage's own loss on held-out examples (1: masks + the scratch base's answer CE;
    # 2: answer CE over the kept tokens; 3: 2 CE + 0.5 expected budget), before and after.
    # A fixed eval set and a deterministic forward: any drop is the training's, not noise.
    assert final["eval/loss"] < MARGINS[stage] * final["eval/initial_loss"], final
    if stage == 3:  # the budget term: fewer tokens than the fixed 25 % of 64 it starts from
        assert final["eval/adaptive_tokens"] < 14


def test_stage_metrics_have_the_baselines_and_stage1_looks_better_than_random(stages):
    final = _meta(stages / "s1" / "model")["final"]
    for way in ("arr_coc", "random", "grid"):
        for budget in (100, 50, 25, 10):
            assert 0 <= final[f"eval/accuracy_{way}_{budget}"] <= 1
    assert final["eval/accuracy_at_budget"] == final["eval/accuracy_arr_coc_25"]
    assert final["eval/precision_at_k_arr_coc_25"] > final["eval/precision_at_k_random_25"]


def test_stage_logs_relevance_metrics_plot_and_kept_cells_to_wandb(stages):
    (path,) = find_run_files(stages / "wandb")
    run = read_run(path)
    logged = {k for row in run.history for k in row}
    expected = {
        *[
            f"knowing/{w}_{s}"
            for w in ("propositional", "perspectival", "participatory")
            for s in ("mean", "std")
        ],
        "balancer/participatory",
        "balancer/threshold",
        "compression_ratio",
        "allocation/mean_tokens",
        "allocation/max_tokens",
        "relevance/precision_at_k",
        "relevance/soft_iou",
        "answer/accuracy",
        "train/loss",
        "eval/accuracy_at_budget",
        "eval/accuracy_random_25",
        "eval/accuracy_grid_10",
        "eval/accuracy_vs_budget_table",
        "eval/kept_cells",
    }
    assert expected <= logged, expected - logged
    (table,) = [row["eval/kept_cells"] for row in run.history if "eval/kept_cells" in row]
    assert table["_type"] == "table-file" and table["nrows"] == 8


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_sigterm_then_resume_equals_the_uninterrupted_stage(stages, tmp_path, stage):
    # Stage 2 and 3 start from the fixture's previous stage (the same --init-model).
    args = _args(stages, f"resume{stage}", stage, "--set", "checkpoint.every_steps=0")
    previous = signal.getsignal(signal.SIGTERM)
    try:
        stopped = main(args, callbacks=[_sigterm_at(3)])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stopped == PREEMPTED_EXIT_CODE
    assert main(args) == 0
    resumed, reference = stages / f"resume{stage}" / "model", stages / f"s{stage}" / "model"
    assert _meta(resumed)["steps"] == STEPS
    a, b = _weights(resumed), _weights(reference)
    assert a.keys() == b.keys() and len(a) > 0
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def test_sigkill_then_resume_equals_the_uninterrupted_stage(stages):
    # Killed without a chance to save (a lost VM): stage 2 resumes from its last committed
    # checkpoint (step 4 of 8), in this process as the reference ran.
    args = _args(stages, "kill2", 2)
    env = trainer_env(OMP_NUM_THREADS=str(torch.get_num_threads()))
    killed = run_trainer(args, module="trainers.arr_coc", env=env, kill_at=(6, "SIGKILL"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert main(args) == 0
    resumed, reference = _weights(stages / "kill2" / "model"), _weights(stages / "s2" / "model")
    assert resumed.keys() == reference.keys()
    assert all(torch.equal(resumed[k], reference[k]) for k in reference)


def _sigterm_at(step: int):
    import os

    def callback(done: int) -> None:
        if done == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return callback


def test_ddp_over_two_processes_matches_one(stages):
    done = run_trainer(_args(stages, "ddp", 1), module="trainers.arr_coc", env=ddp_env(2))
    assert done.returncode == 0, done.stderr[-3000:]
    assert _meta(stages / "ddp" / "model")["world_size"] == 2
    ddp, single = _weights(stages / "ddp" / "model"), _weights(stages / "s1" / "model")
    # Guard: the balancer's weights start at zero, so non-zero ones have trained.
    assert float(single["head.balancer.weights.weight"].abs().sum()) > 0
    assert ddp.keys() == single.keys()
    for name in single:
        assert torch.allclose(ddp[name], single[name], atol=2e-4, rtol=1e-3), name


def test_stage2_never_resumes_stage1s_checkpoint(stages, capsys):
    one = resolve_config(parser().parse_args(["--stage", "1"]))
    two = resolve_config(parser().parse_args(["--stage", "2", "--init-model", "m"]))
    # Without --checkpoint-dir each stage has a directory of its own.
    roots = {resumable.default_root(cfg, trainer=ArrCocTask, world_size=1) for cfg in (one, two)}
    assert len(roots) == 2
    # Pointed at stage 1's checkpoints, stage 2 refuses them in one line.
    args = _args(stages, "s2-on-s1", 2)
    args[args.index("--checkpoint-dir") + 1] = str(stages / "s1" / "ckpt")
    capsys.readouterr()
    assert main(args) == 2
    line = _error_line(capsys)
    assert "holds a checkpoint of another run (step 8;" in line and "init_model" in line


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (["--stage", "4"], "relevance.stage=4 is invalid"),
        (["--stage", "two"], "relevance.stage='two' is invalid"),
        (["--stage", "2"], "pass --init-model DIR"),
    ],
)
def test_bad_stage_or_missing_init_model_is_one_line_exit_2(extra, says, capsys):
    assert main(["--preset", "debug", *extra]) == 2
    assert says in _error_line(capsys)


def _error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and "error: " in lines[0], captured.err[-3000:]
    assert "Traceback" not in captured.out + captured.err
    return lines[0]


def test_prepare_then_evaluate_scores_every_budget_with_the_baselines(stages, tmp_path):
    from components.common import TRAINERS
    from trainers.arr_coc.steps import STEPS
    from trainers.common.steps import gate_value

    assert TRAINERS["arr_coc"] is STEPS
    cfg = STEPS.config(
        [
            "--preset",
            "debug",
            *("--set", "data.synthetic_examples=20"),
            *("--set", "data.hard_examples=10"),
            *("--set", "data.eval_fraction=0.4"),
        ]
    )
    stats = STEPS.prepare(cfg, train_dir=str(tmp_path / "train"), eval_dir=str(tmp_path / "eval"))
    for split in ("train", "eval"):
        manifest = stats[split]
        assert manifest["masked_records"] == manifest["num_records"] > 0
    assert stats["train"]["hard_records"] + stats["eval"]["hard_records"] == 10
    first = json.loads((tmp_path / "eval" / "records.jsonl").read_text().splitlines()[0])
    assert (tmp_path / "eval" / first["image"]).is_file()  # images and masks stored beside
    assert (tmp_path / "eval" / first["mask"]).is_file()

    result = STEPS.evaluate(
        str(stages / "s3" / "model"), str(tmp_path / "eval"), max_examples=0, max_new_tokens=8
    )
    metrics = result.metrics
    for way in ("arr_coc", "random", "grid"):
        for budget in (100, 50, 25, 10):
            assert 0 <= metrics[f"accuracy_{way}_{budget}"] <= 1
            assert 0 <= metrics[f"precision_at_k_{way}_{budget}"] <= 1
    assert metrics["accuracy_at_budget"] == metrics["accuracy_arr_coc_25"]
    assert "hard_accuracy_at_budget" in metrics
    assert gate_value(metrics, STEPS.gate_metrics[0]) == metrics["accuracy_at_budget"]
    assert result.samples and all(len(s["kept_cells"]) == 16 for s in result.samples)  # 25 % of 64
    assert result.rows()[0][:2] == [result.samples[0]["question"], result.samples[0]["answer"]]


def test_stage1_on_records_without_masks_is_one_line_exit_1(tmp_path, capsys):
    from trainers.arr_coc.scenes import scene_records

    records = [{k: v for k, v in r.items() if k != "mask"} for r in scene_records(12, seed=0)]
    path = tmp_path / "vqa.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    args = ["--preset", "debug", "--data", str(path), "--set", "data.eval_fraction=0.3"]
    args += ["--max-steps", "1"]  # were the check to miss, the run stays short
    assert main([*args, "--set", "wandb.enabled=false", "--output-dir", str(tmp_path / "m")]) == 1
    assert "no training record has a 'mask' or 'boxes'" in _error_line(capsys)


def test_help_opens_with_the_cpu_recipe_and_names_the_stage_flags(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "python -m trainers.arr_coc --preset debug --stage 1" in out.split("options:")[0]
    assert "--stage 1|2|3" in out and "--init-model DIR" in out
    cfg = resolve_config(parser().parse_args(["--stage", "3", "--init-model", "gs://b/s2"]))
    assert (cfg.relevance.stage, cfg.init_model) == (3, "gs://b/s2")
