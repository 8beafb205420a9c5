"""The whole-pipeline runs the end-to-end tests and the README test share, each run once per
session exactly as README.md writes it, in one working directory laid out like a fresh clone:

    readme_dir     examples/ (linked from the repository) and what the commands make: .liftoff/
    demo_run       `liftoff run llm-finetune --preset debug` (what `make demo` runs), on a terminal
    vlm_run        `liftoff run vlm-ddp --preset debug`, its output piped
    arr_coc_run    `liftoff run arr-coc --preset debug` with fewer steps (ARR_COC_TINY), piped
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.terminal import TtyRun, run_on_tty
from tests.support.trainer_runs import REPO

DEMO = "liftoff run llm-finetune --preset debug"
VLM = "liftoff run vlm-ddp --preset debug"
ARR_COC = "liftoff run arr-coc --preset debug"
# Each stage cut to a few steps on fewer scenes, scored on fewer examples, so the three stages
# and the rest take about a minute and a half; a gate any model passes, so it registers.
ARR_COC_FEW = [
    *("--param", "max_steps=2"),
    *("--set", "data.synthetic_examples=200", "--set", "data.hard_examples=100"),
    *("--set", "train.exact_match_examples=8"),
]
ARR_COC_TINY = [*ARR_COC_FEW, "--param", "gate_threshold=0"]
BIN = Path(sys.executable).parent  # where `liftoff` is, as `make install` puts it


def readme_env(**extra: str) -> dict[str, str]:
    """The environment of a user who followed the README: the venv's commands first on PATH,
    nothing downloaded, no W&B key."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", HF_HUB_OFFLINE="1")
    for name in ("WANDB_API_KEY", "WANDB_SILENT", "NO_COLOR", "PYTHONPATH"):
        env.pop(name, None)
    return env | extra


@dataclass
class Run:
    command: str
    returncode: int
    output: str  # what the terminal shows at the end (the screen), or the piped stdout
    workdir: Path  # where the run's .liftoff is

    def run_dir(self) -> Path:
        """The run's directory under .liftoff/runs, by the id its first line names
        ("llm-finetune  run llm-finetune-20261201-..."): later runs of the same pipeline in
        this directory (the README's recipe run) are not this one."""
        title = next(line for line in self.output.splitlines() if "  run " in line)
        return self.workdir / ".liftoff" / "runs" / title.split("  run ", 1)[1].split()[0]


@pytest.fixture(scope="session")
def readme_dir(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("fresh-clone")
    (workdir / "examples").symlink_to(REPO / "examples")
    return workdir


@pytest.fixture(scope="session")
def demo_run(readme_dir, tmp_path_factory) -> tuple[Run, TtyRun]:
    done = run_on_tty(DEMO.split(), cwd=readme_dir, env=readme_env(), timeout_s=1800)
    # What the terminal showed, for a person to read (pytest's basetemp/terminal*/demo.txt).
    (tmp_path_factory.mktemp("terminal") / "demo.txt").write_text("\n".join(done.screen) + "\n")
    return Run(DEMO, done.returncode, "\n".join(done.screen), readme_dir), done


@pytest.fixture(scope="session")
def vlm_run(readme_dir) -> Run:
    return piped_run(VLM, readme_dir)


@pytest.fixture(scope="session")
def arr_coc_run(readme_dir) -> Run:
    return piped_run(ARR_COC, readme_dir, *ARR_COC_TINY)


def piped_run(command: str, workdir: Path, *extra: str) -> Run:
    """`command` (and `extra` arguments) run in `workdir`, its output piped; it must succeed."""
    done = subprocess.run(
        [*command.split(), *extra],
        cwd=workdir,
        env=readme_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return Run(command, done.returncode, done.stdout, workdir)
