"""The golden compiled pipelines: what `liftoff compile` must produce byte for byte.

Regenerate after an intended change with `make golden` (python -m tests.pipelines.golden) and
review the diff like code.
"""

from __future__ import annotations

import os
from pathlib import Path

HERE = Path(__file__).parent / "golden"
# name -> compile options; each is compiled with the default images (no LIFTOFF_*_IMAGE).
CASES = {
    "llm-finetune": {"pipeline": "llm-finetune", "hardware": "a100x1"},
    "llm-finetune-a100x8-2nodes-spot": {
        "pipeline": "llm-finetune",
        "hardware": "a100x8",
        "nodes": 2,
        "scheduling": "SPOT",
    },
    "vlm-ddp": {"pipeline": "vlm-ddp", "hardware": "a100x8"},
    "vlm-ddp-a100x8-2nodes": {"pipeline": "vlm-ddp", "hardware": "a100x8", "nodes": 2},
}


def compile_case(name: str, path: str) -> str:
    from pipelines.compile import compile_pipeline
    from pipelines.hardware import get_profile

    case = CASES[name]
    profile = get_profile(case["hardware"]).with_options(
        nodes=case.get("nodes"), scheduling=case.get("scheduling")
    )
    return compile_pipeline(case["pipeline"], hardware=profile, path=path)


def main() -> None:
    for variable in ("LIFTOFF_TRAINER_IMAGE", "LIFTOFF_SERVING_IMAGE"):
        if os.environ.get(variable):
            raise SystemExit(f"unset {variable}: golden files use the default images")
    HERE.mkdir(exist_ok=True)
    for name in CASES:
        print(compile_case(name, str(HERE / f"{name}.yaml")))


if __name__ == "__main__":
    main()
