"""`liftoff run llm-finetune` end to end on the local target, through the real CLI: the demo as
`make demo` runs it, on a terminal (calm: a line per step, a training bar, the summary; the logs
keep everything); a gated-out run that says so; a failing step whose cause and exit status reach
the summary.

    .venv/bin/python -m pytest -q tests/e2e/test_llm_finetune.py
"""

import json
import re
import subprocess
import sys

import pytest

from pipelines.local_records import local_status
from pipelines.step_logs import ANSI
from serving.registry import LocalRegistry
from tests.e2e.conftest import readme_env
from tests.support.kfp_local import TINY_OVERRIDES
from tests.support.terminal import run_on_tty
from tests.support.trainer_runs import REPO
from tests.support.wandb_records import read_run

pytestmark = pytest.mark.slow

STEPS = ["prepare-data", "train", "evaluate", "gate", "register-local", "deploy-local"]
TINY = [arg for item in TINY_OVERRIDES for arg in ("--set", item)] + ["--param", "max_steps=8"]
COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-7]|9[0-7]|38;[0-9;]+)m")  # a foreground colour


def test_the_demo_is_calm_on_a_terminal_and_ends_in_the_summary(demo_run):
    run, tty = demo_run
    assert run.returncode == 0, tty.raw[-3000:]
    screen = run.output.splitlines()
    assert len(screen) < 40, run.output
    assert screen[0].startswith("llm-finetune  run llm-finetune-")
    step_lines = [line for line in screen if line.split()[1:2] and line.split()[1] in STEPS]
    assert [line.split()[:3] for line in step_lines] == [["✓", name, "done"] for name in STEPS]
    assert "llm-finetune SUCCEEDED in " in run.output
    assert "  registered: llm-finetune@1 (latest)" in screen
    assert any(line.startswith("  deploy check: healthy; 'What is 12 + 7?' -> ") for line in screen)
    # While it trained, the terminal showed a bar with the step, the loss and an ETA.
    plain = ANSI.sub("", tty.raw)
    assert "━" in plain and re.search(r"step \d+/500 loss \d+\.\d+ ETA ", plain)
    assert "Got executor_input" not in plain and "wandb:" not in plain


def test_the_demo_logs_hold_everything(demo_run):
    run, _ = demo_run
    logs = run.run_dir() / "logs"
    assert sorted(p.name for p in logs.iterdir()) == sorted(
        [*(f"{s}.log" for s in STEPS), "run.log"]
    )
    train = (logs / "train.log").read_text()
    assert "Got executor_input" in train  # the KFP executor's
    assert "wandb: Run data is saved locally in" in train  # W&B's
    assert "step 500/500 loss" in train and "checkpoint committed" in train  # the trainer's
    everything = (logs / "run.log").read_text()
    assert all(f"Executing task '{step}'" in everything for step in STEPS)
    for path in logs.iterdir():
        assert "\x1b" not in path.read_text(), path  # kfp.local's colours stripped
    assert f"  logs: .liftoff/runs/{run.run_dir().name}/logs/ " in run.output


def test_the_demo_record_and_registry(demo_run):
    run, _ = demo_run
    status = local_status(str(run.workdir / ".liftoff"), run.run_dir().name)
    assert status["state"] == "SUCCEEDED" and [t["state"] for t in status["tasks"]] == ["done"] * 6
    assert all(t["started"] and t["ended"] for t in status["tasks"])
    registry = LocalRegistry(str(run.workdir / ".liftoff" / "registry"))
    version = registry.resolve("llm-finetune@1")
    assert version.labels["liftoff_run"] == run.run_dir().name
    check = version.deployments[-1]
    assert check["healthy"] and len(check["predictions"]) == len(check["instances"]) == 2


def test_each_wandb_run_is_labelled_with_its_step(demo_run):
    run, _ = demo_run
    lines = run.output.splitlines()
    start = lines.index("  W&B runs (offline; `wandb sync DIR` uploads one):")
    labelled = [line.split() for line in lines[start + 1 : start + 4]]
    assert [step for step, _ in labelled] == ["prepare-data", "train", "evaluate"]
    runs = {step: read_run(run.workdir / path) for step, path in labelled}
    assert all(r.job_type == step.replace("-", "_") for step, r in runs.items())
    groups = {r.group for r in runs.values()}
    assert len(groups) == 1 and groups.pop().startswith("llm-finetune-")


def liftoff_run(workdir, *args: str, env=None) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "pipelines.cli", "run", "llm-finetune", "--workdir", str(workdir)]
    return subprocess.run(
        [*argv, *args],
        cwd=REPO,
        env=env or readme_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )


# What a gated-out run says: the gate metric and its value. The gate and the branches behind it
# are the pipeline factory's (pipelines/stages.py), the same for every pipeline; arr-coc's
# compiled spec is checked to hold register and deploy behind it (test_compile_arr_coc.py).
GATED_OUT = {"llm-finetune": (TINY, re.escape("exact_match 0 "))}


@pytest.mark.parametrize("pipeline", list(GATED_OUT))
def test_a_gated_out_run_says_so_without_colour_when_asked(tmp_path, pipeline):
    args, value = GATED_OUT[pipeline]
    argv = [sys.executable, "-m", "pipelines.cli", "run", pipeline, *args]
    argv += ["--workdir", str(tmp_path), "--param", "gate_threshold=1.5"]
    done = run_on_tty(argv, cwd=REPO, env=readme_env(NO_COLOR="1"), timeout_s=900)
    assert done.returncode == 0, done.raw[-3000:]
    assert not COLOUR.search(done.raw)  # NO_COLOR: no colour, on a terminal too
    screen = "\n".join(done.screen)
    said = f"not registered: {value}is below gate_threshold 1.5, so register and deploy"
    assert re.search(said, screen), screen
    assert "- register-local   skipped" in screen and "- deploy-local     skipped" in screen
    assert LocalRegistry(str(tmp_path / "registry")).names() == []


def test_a_bad_record_names_its_cause_exits_2_and_shows_no_traceback(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "What is 1 + 1?", "response": "2"}\n{"prompt": "no response"}\n')
    done = liftoff_run(tmp_path / "wd", "--param", f"data={data}", "--json")
    cause = f"{data}:2: missing field 'response' (expected prompt/response or messages)"
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"  error: prepare-data: {cause}" in done.stdout.splitlines()
    assert "Traceback" not in done.stdout + done.stderr and done.stderr == ""
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["error"] == f"prepare-data: {cause}" and result["exit_code"] == 2
    assert not ANSI.search(done.stdout)
    log = tmp_path / "wd" / "runs" / result["run_id"] / "logs" / "prepare-data.log"
    assert f"  log: {log}" in done.stdout and "Traceback" in log.read_text()

    verbose = liftoff_run(tmp_path / "wd", "--param", f"data={data}", "-v")
    assert verbose.returncode == 2
    assert "Got executor_input" in verbose.stdout and "Traceback" in verbose.stdout  # as today
    assert "\x1b" not in verbose.stdout  # a pipe: kfp.local's colours stripped
