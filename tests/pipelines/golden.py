"""The golden compiled pipelines: what `liftoff compile` must produce byte for byte.

Regenerate after an intended change with `make golden` (python -m tests.pipelines.golden) and
review the diff like code.
"""

from __future__ import annotations

from pathlib import Path

from components.images import Images

HERE = Path(__file__).parent / "golden"
DIGEST = "0123456789abcdef" * 4
REGISTRY = "us-central1-docker.pkg.dev/liftoff-test/liftoff"
# Fixed images, so the files do not change when a build pins components/images.py.
IMAGES = {
    "trainer": f"{REGISTRY}/trainer@sha256:{DIGEST}",
    "serving": f"{REGISTRY}/serving@sha256:{DIGEST}",
    "serving-gpu": f"{REGISTRY}/serving-gpu@sha256:{DIGEST}",
}
# name -> compile options.
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
    "arr-coc": {"pipeline": "arr-coc", "hardware": "a100x1"},
}


def compile_case(name: str, path: str) -> str:
    from pipelines.compile import compile_pipeline
    from pipelines.hardware import SERVING_DEFAULT, get_profile

    case = CASES[name]
    profile = get_profile(case["hardware"]).with_options(
        nodes=case.get("nodes"), scheduling=case.get("scheduling")
    )
    serving = get_profile(SERVING_DEFAULT)
    images = Images(
        trainer=IMAGES["trainer"],
        serving=IMAGES["serving-gpu" if serving.accelerator_count else "serving"],
    )
    return compile_pipeline(
        case["pipeline"], hardware=profile, images=images, serving=serving, path=path
    )


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for name in CASES:
        print(compile_case(name, str(HERE / f"{name}.yaml")))


if __name__ == "__main__":
    main()
