"""The trainers' progress line, written in one place and read back in one place: the loop prints
it every `train.log_every` steps, and `liftoff run`'s terminal view follows training by it.

    log(progress_line(step=120, max_steps=500, loss=1.0458, lr=2.72e-3,
                      rates={"tokens": 436.8}))
    # step 120/500 loss 1.0458 lr 2.72e-03 tokens/s 436.8
    parse_progress("step 120/500 loss 1.0458 lr 2.72e-03 tokens/s 436.8")
    # Progress(step=120, max_steps=500, loss=1.0458)

On Vertex the line reaches Cloud Logging as the `message` of a JSON entry
(trainers/common/logs.py); `parse_progress` reads both forms.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

_LINE = re.compile(r"step (?P<step>\d+)/(?P<max_steps>\d+) loss (?P<loss>\S+)(?: |$)")


@dataclass(frozen=True)
class Progress:
    step: int
    max_steps: int
    loss: float


def progress_line(
    *, step: int, max_steps: int, loss: float, lr: float, rates: Mapping[str, float]
) -> str:
    """`rates`: per-second throughputs by name ("tokens", "images")."""
    shown = " ".join(f"{name}/s {value:,.1f}" for name, value in rates.items())
    return f"step {step}/{max_steps} loss {loss:.4f} lr {lr:.2e} {shown}".rstrip()


def parse_progress(line: str) -> Progress | None:
    """The progress a trainer's output line reports, or None for any other line."""
    text = line.strip()
    if text.startswith("{"):
        try:
            text = str(json.loads(text).get("message", ""))
        except (ValueError, AttributeError):
            return None
    match = _LINE.match(text)
    if not match:
        return None
    try:
        loss = float(match["loss"])
    except ValueError:
        return None
    return Progress(step=int(match["step"]), max_steps=int(match["max_steps"]), loss=loss)
