"""The trainer as a child process, the way a CustomJob needs it: a SIGTERM sent to this process
reaches the trainer, and the trainer's exit status becomes this process's.

    run_trainer([sys.executable, "-m", "trainers.llm", ...], env=env, module="trainers.llm")

Before a spot VM goes, Vertex sends SIGTERM; the trainer commits a checkpoint and exits 143, and
Vertex restarts a job whose container exits so (it treats exit 1 as a permanent error). The KFP
executor that runs the train component turns any exception into exit 1, so a failed trainer
leaves as `TrainerFailed`, a SystemExit with the trainer's own status.
"""

from __future__ import annotations

import signal
import subprocess

from trainers.common.logs import log


class TrainerFailed(SystemExit):
    def __init__(self, returncode: int, *, module: str) -> None:
        # Killed by signal N (returncode -N): exit 128 + N, as a shell reports it.
        super().__init__(returncode if returncode > 0 else 128 - returncode)
        self.returncode = returncode
        self.message = f"train: python -m {module} exited with status {returncode}"

    def __str__(self) -> str:
        return self.message


def run_trainer(command: list[str], *, env: dict[str, str], module: str) -> None:
    """Run `command` to its end, passing SIGTERM on; raise TrainerFailed unless it exits 0."""
    with subprocess.Popen(command, env=env) as trainer:
        forward = signal.signal(signal.SIGTERM, lambda signum, _: trainer.send_signal(signum))
        try:
            returncode = trainer.wait()
        finally:
            signal.signal(signal.SIGTERM, forward)
    if returncode:
        failed = TrainerFailed(returncode, module=module)
        log(str(failed), severity="ERROR")
        raise failed
