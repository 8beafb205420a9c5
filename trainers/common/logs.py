"""How the trainers and components say something: a plain line on this machine, a JSON line with
its severity and labels on Vertex AI, where Cloud Logging reads each JSON line a job writes as a
structured entry (the severity shown and filterable, the labels to filter by run, step and rank:
`liftoff logs RUN --severity ERROR`).

    from trainers.common.logs import label_run, log
    label_run(run="llm-finetune-20260105-...", step="train")   # once per step; children inherit
    log("checkpoint committed: gs://b/ckpt/step-00000500")
    log("error: data.jsonl:17: missing field 'response'", severity="ERROR")   # to stderr

On Vertex (an `AIP_*` variable or `CLOUD_ML_JOB_ID` set) the line is
    {"severity": "INFO", "message": "...", "logging.googleapis.com/labels":
     {"liftoff_run": "...", "liftoff_step": "train", "rank": "0"}}
WARNING and above go to stderr, the rest to stdout, each line in one write so that processes
sharing a stream (DDP ranks under torchrun) never interleave within a line.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping

RUN_ENV = "LIFTOFF_RUN"
STEP_ENV = "LIFTOFF_STEP"
LABELS = "logging.googleapis.com/labels"  # Cloud Logging's special field for entry labels
SEVERITIES = ("DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL")
_TO_STDERR = ("WARNING", "ERROR", "CRITICAL")


def on_vertex(environ: Mapping[str, str] = os.environ) -> bool:
    """True inside a Vertex AI job (a CustomJob, or a pipeline step, which runs as one)."""
    return "CLOUD_ML_JOB_ID" in environ or any(name.startswith("AIP_") for name in environ)


def label_run(*, run: str = "", step: str = "") -> None:
    """Name the run and step this process's entries belong to (and its children's: the
    trainer a component starts, torchrun's workers)."""
    for variable, value in ((RUN_ENV, run), (STEP_ENV, step)):
        if value:
            os.environ[variable] = value


def format_line(message: str, *, severity: str = "INFO", environ=os.environ) -> str:
    """The line `log` writes, without its newline."""
    assert severity in SEVERITIES, severity
    if not on_vertex(environ):
        return message
    labels = {
        "liftoff_run": environ.get(RUN_ENV, ""),
        "liftoff_step": environ.get(STEP_ENV, ""),
        "rank": environ.get("RANK", "0"),
    }
    entry = {
        "severity": severity,
        "message": message,
        LABELS: {key: value for key, value in labels.items() if value},
    }
    return json.dumps(entry, ensure_ascii=False)


def log(message: str, *, severity: str = "INFO") -> None:
    stream = sys.stderr if severity in _TO_STDERR else sys.stdout
    stream.write(format_line(message, severity=severity) + "\n")
    stream.flush()
