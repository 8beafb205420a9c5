"""Every command in README.md's ```bash blocks runs as written: in README order, in one working
directory laid out like a fresh clone after `make install` (.venv/ and examples/), reading the
README as it is now.

    .venv/bin/python -m pytest -q tests/e2e/test_readme.py

How each is run:
- `liftoff ...` in this process (`pipelines.cli.main`), against the loopback fakes: the Vertex
  fake (LIFTOFF_API_ENDPOINT) and the GCS emulator; `liftoff run PIPELINE --preset debug` is the
  session's run shared with tests/e2e/test_*.py (conftest.py); `liftoff serve` starts in the
  background on a free port (the README's port is mapped to it, in its `curl` too) and is stopped
  at the end.
- `curl ...` with bash (for its `$(...)`), against that server.
- `python -m trainers.* ...`, `.venv/bin/python -m ...` as child processes.
- `$PROJECT`, `$REGION`, `$IMAGES`, `$TAG` are the README's example values (VALUES).
NOT_RUN names the programs this test leaves alone and why; SKIP the few commands that cannot run
here as written. A command of any other program, or one that fails, fails the test: make it
runnable as written (cheap, e.g. the debug preset), or add it to SKIP with a reason.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request

import pytest

from pipelines.cli import main
from pipelines.images import commit_sha
from tests.e2e.conftest import DEMO, VLM, readme_env
from tests.support.readme import Command, readme_commands
from tests.support.trainer_runs import REPO, free_port

pytestmark = pytest.mark.slow

NOT_RUN = {
    "make": "runs the test suite, or the demo (liftoff run llm-finetune --preset debug, run here)",
    "gcloud": "Google Cloud set-up; the merge build's gcloud steps: tests/test_cloudbuild.py",
    "docker": "image builds; the merge build's: tests/test_cloudbuild.py",
    "printf": "stores a key in Secret Manager (with gcloud)",
    "": "sets shell variables for the commands after it",
}
BENCHMARK = "benchmarks/"  # `make bench`: minutes of measurements, not a check
ELIDED = " ..."  # a command the README shortens (`submit ... --dry-run ...`) is not whole
SKIP = {
    "liftoff submit --template https://": "a real Artifact Registry URL (tests/pipelines/"
    "test_templates.py submits templates from the KFP registry fake)",
    "liftoff templates ": "a real Artifact Registry host (tests/pipelines/test_templates.py)",
    "liftoff schedule ": "a real Artifact Registry template (tests/pipelines/test_schedules.py)",
    "liftoff status llm-finetune-2026": "a real project's run (tests/pipelines/test_watch.py)",
    "liftoff launch job ": "W&B and its Launch queues (tests/pipelines/launch/)",
    "liftoff launch submit ": "W&B and its Launch queues (tests/pipelines/launch/)",
    "liftoff models alias llm-finetune@3": "a registry of 3 versions; a fresh clone's has 2",
    "liftoff models alias llm-finetune@2": "comes after the @3 ones (prod deleted again)",
    "liftoff serve llm-finetune@prod": "comes after the @3 ones (prod deleted again)",
    "python -m trainers.llm --preset qwen2.5-7b-lora": "downloads a 7B model, reads gs://my-bucket",
    "python -m trainers.vlm --preset siglip-so400m": "downloads the models, reads gs://my-bucket",
    # The trainers' CPU recipes, as written, each in a directory of its own with its learning
    # asserted: not run a second time here.
    ".venv/bin/python -m trainers.llm --preset debug": "tests/trainers/test_llm_debug.py",
    ".venv/bin/python -m trainers.vlm --preset debug": "tests/trainers/vlm/test_vlm_debug.py",
    "LIFTOFF_NPROC_PER_NODE=2 .venv/bin/python -m trainers.vlm --preset debug": "the same "
    "trainer over 2 gloo processes: `liftoff run vlm-ddp --preset debug` above, and "
    "tests/trainers/vlm/test_vlm_ddp.py",
    "python -m trainers.arr_coc --preset debug --stage": "tests/trainers/arr_coc/test_trainer.py "
    "runs each stage (with fewer steps)",
    "liftoff run arr-coc --preset debug": "three stages of minutes: run with fewer steps "
    "(arr_coc_run, which `liftoff serve arr-coc@latest` serves) by tests/e2e/test_arr_coc.py",
}
PLACEHOLDER = re.compile(r"(?<![\w-])(RUN)(?![\w-])")  # `liftoff logs RUN`: any run's id
VALUES = {
    "PROJECT": "my-proj",
    "REGION": "us-central1",
    "IMAGES": "us-central1-docker.pkg.dev/my-proj/liftoff",
    "TAG": "0123abc",
}
README = REPO / "README.md"
COMMANDS = readme_commands(README)


def why_not_run(command: Command) -> str:
    if command.program in NOT_RUN:
        return NOT_RUN[command.program]
    if BENCHMARK in command.text:
        return "a benchmark: `make bench`"
    if ELIDED in command.text:
        return "shortened with ... in the README"
    if PLACEHOLDER.search(command.text):
        return "RUN stands for a run's id"
    return next((why for start, why in SKIP.items() if command.text.startswith(start)), "")


def expand(text: str) -> str:
    return re.sub(r"\$(\w+)", lambda m: VALUES.get(m[1], m[0]), text)


@pytest.fixture(scope="module")
def servers():
    """The README's port -> (the free port its server listens on, the server)."""
    running: dict[int, tuple[int, subprocess.Popen]] = {}
    yield running
    for _, process in running.values():
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture
def fresh_clone(readme_dir, monkeypatch):
    """The clone after `make install` and the README's set-up: its liftoff.toml as written; a
    checkout of this commit (the images are tagged with it)."""
    venv = readme_dir / ".venv"
    if not venv.exists():
        venv.symlink_to(REPO / ".venv")
        (readme_dir / "liftoff.toml").write_text(readme_toml())
    monkeypatch.chdir(readme_dir)
    for name in ("PROJECT", "REGION", "PIPELINE_ROOT", "SERVICE_ACCOUNT"):
        monkeypatch.delenv(f"LIFTOFF_{name}", raising=False)
    monkeypatch.setenv("LIFTOFF_GIT_SHA", commit_sha() or "0123456789abcdef")
    return readme_dir


def readme_toml() -> str:
    (block,) = re.findall(r"^```toml\n(.*?)^```", README.read_text(), flags=re.S | re.M)
    return block


def test_every_readme_command_is_known():
    assert DEMO in [c.text for c in COMMANDS] and VLM in [c.text for c in COMMANDS]
    unknown = [
        f"README.md:{c.line}: {c.text}"
        for c in COMMANDS
        if c.program not in ("liftoff", "curl", "python") and not why_not_run(c)
    ]
    assert unknown == [], "add the program to NOT_RUN, or run it in this test"


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.line}: {c.text[:60]}" for c in COMMANDS])
def test_as_written(command, request, fresh_clone, servers, capsys):
    reason = why_not_run(command)
    if reason:
        pytest.skip(reason)
    text = expand(command.text)
    if text == DEMO:
        run, _ = request.getfixturevalue("demo_run")
        assert run.returncode == 0, run.output
    elif text == VLM:
        assert request.getfixturevalue("vlm_run").returncode == 0
    elif command.program == "liftoff" and command.args[1] == "serve":
        serve(command, servers, request=request)
    elif command.program == "liftoff":
        liftoff(command, text, request=request, capsys=capsys)
    elif command.program == "curl":
        curl(text, servers, cwd=fresh_clone)
    else:
        done = shell(text, cwd=fresh_clone)
        assert done.returncode == 0, done.stderr[-3000:]


def shell(text: str, *, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", "-c", text],
        cwd=cwd,
        env=readme_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )


def liftoff(command: Command, text: str, *, request, capsys) -> None:
    """In this process, against the Vertex fake and the GCS emulator; the registry commands
    after the demo's run."""
    if any(ref in text for ref in ("llm-finetune@", "liftoff models")):
        request.getfixturevalue("demo_run")
    request.getfixturevalue("vertex_fake")
    request.getfixturevalue("gcs_emulator")
    for name, value in command.env.items():
        request.getfixturevalue("monkeypatch").setenv(name, value)
    code = main(Command(text=text, line=command.line).args[1:])
    out, err = capsys.readouterr()
    assert code == 0, f"exit {code}: {err[-2000:]}"


def serve(command: Command, servers, *, request) -> None:
    runs = {"vlm-ddp@": "vlm_run", "arr-coc@": "arr_coc_run"}
    request.getfixturevalue(next((r for m, r in runs.items() if m in command.text), "demo_run"))
    port = int(command.args[command.args.index("--port") + 1])
    free = free_port()
    args = [*command.args[:-1], str(free)] if command.args[-1] == str(port) else command.args
    process = subprocess.Popen(
        args,
        cwd=request.getfixturevalue("readme_dir"),
        env=readme_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    servers[port] = (free, process)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{command.text} exited {process.returncode}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{free}/health", timeout=5) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"{command.text}: not healthy within 300 s")


def curl(text: str, servers, *, cwd) -> None:
    (port,) = {int(p) for p in re.findall(r"localhost:(\d+)", text)}
    assert port in servers, f"no `liftoff serve --port {port}` before: {text}"
    text = text.replace(f"localhost:{port}", f"localhost:{servers[port][0]}")
    done = shell(text, cwd=cwd)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    predictions = answer["predictions"]
    # Text and VLM answers are strings; ARR-COC's are objects naming the kept cells too.
    assert predictions and all(isinstance(p, str) or p["kept_cells"] for p in predictions)
