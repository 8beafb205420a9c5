"""`pip install 'liftoff[pipelines]'` alone compiles and submits every pipeline: nothing on that
path imports what only the `train` extra brings. Checked in a fresh interpreter where those
packages cannot be imported at all.

.venv/bin/python -m pytest -q tests/pipelines/test_pipelines_extra.py
"""

import subprocess
import sys

from pipelines.catalog import PIPELINES
from tests.support.trainer_runs import REPO

TRAIN_ONLY = ("torch", "transformers", "fsspec", "gcsfs", "wandb", "peft", "safetensors")

SCRIPT = """
import sys

class TrainExtraMissing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, TrainExtraMissing())
from pipelines.cli import main

registry = ["--project", "p", "--region", "us-central1", "--image-version", "v1"]
for name in {pipelines!r}:
    argv = ["compile", name, *registry, "--param", "preset=debug", "--set", "train.seed=3"]
    assert main([*argv, "-o", name + ".yaml"]) == 0, name
    destination = ["--pipeline-root", "gs://b/root", "--param", "max_steps=5"]
    assert main(["submit", name, "--dry-run", *registry, *destination]) == 0, name
loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {blocked!r})
assert loaded == [], loaded
"""


def test_compile_and_submit_need_only_the_pipelines_extra(tmp_path):
    script = SCRIPT.format(blocked=TRAIN_ONLY, pipelines=list(PIPELINES))
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.glob("*.yaml")) == sorted(f"{n}.yaml" for n in PIPELINES)
    assert done.stdout.count('"pipelineJobId"') == len(PIPELINES)
