"""Which container images a compiled pipeline names, for `liftoff compile` and `submit`.

    images = resolve_images(flags={"trainer_image": None, "serving_image": None},
                            registry=Registry(project="p", region="us-central1"),
                            serving_accelerated=True)
    images.serving   # us-central1-docker.pkg.dev/p/liftoff/serving-gpu:<commit>

For each image, first hit wins:
1. the flags `--trainer-image` and `--serving-image` (the serving image for the deploy profile);
2. LIFTOFF_TRAINER_IMAGE, LIFTOFF_SERVING_IMAGE, LIFTOFF_SERVING_GPU_IMAGE;
3. the digests the build pinned in components/images.py;
4. the project's Artifact Registry, where cloudbuild.yaml pushes:
   REGION-docker.pkg.dev/PROJECT/REPO/{trainer,serving,serving-gpu}:VERSION, with REPO
   `liftoff` and VERSION this commit's short sha (the build's tag) unless given.

Nothing else: a built-in default that no build publishes would only fail on Vertex, after the
job has waited for its machines. The serving build follows the deploy profile: CUDA torch
(`serving-gpu`) when it has accelerators, CPU torch (`serving`) when not.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass

from components.images import PINNED, Images, check_pinned, serving_name

DEFAULT_REPO = "liftoff"
SHORT_SHA = 7  # Cloud Build's $SHORT_SHA, the tag the build pushes
ENV = {
    "trainer": "LIFTOFF_TRAINER_IMAGE",
    "serving": "LIFTOFF_SERVING_IMAGE",
    "serving-gpu": "LIFTOFF_SERVING_GPU_IMAGE",
}


@dataclass(frozen=True, kw_only=True)
class Registry:
    """The project's Docker repository in Artifact Registry; empty fields: not known."""

    project: str = ""
    region: str = ""
    repo: str = DEFAULT_REPO
    version: str = ""  # the image tag; default: this commit's short sha

    def reference(self, name: str) -> str:
        version = self.version or commit_sha()[:SHORT_SHA]
        if not (self.project and self.region and version):
            return ""
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repo}/{name}:{version}"


def resolve_images(
    *,
    flags: Mapping[str, str | None],
    registry: Registry,
    serving_accelerated: bool,
    environ: Mapping[str, str] = os.environ,
) -> Images:
    """`flags`: `trainer_image` and `serving_image` as parsed (None: not given)."""
    serving = serving_name(accelerated=serving_accelerated)
    return Images(
        trainer=_resolve("trainer", flags.get("trainer_image"), registry, environ),
        serving=_resolve(serving, flags.get("serving_image"), registry, environ),
    )


def _resolve(name: str, flag: str | None, registry: Registry, environ: Mapping[str, str]) -> str:
    for source, image in (
        (f"--{name.split('-')[0]}-image", flag),
        (ENV[name], environ.get(ENV[name])),
        (f"components/images.py ({name})", PINNED[name]),
        ("the project's Artifact Registry", registry.reference(name)),
    ):
        if image:
            check_pinned(image, what=f"{source}")
            return image
    raise ValueError(
        f"no {name} image: pass --{name.split('-')[0]}-image, set {ENV[name]}, or name the "
        "project's Artifact Registry (--project and --region; --image-version outside a git "
        f"checkout) for REGION-docker.pkg.dev/PROJECT/{registry.repo}/{name}:VERSION"
    )


def commit_sha(environ: Mapping[str, str] = os.environ) -> str:
    """The commit being built or run (Cloud Build sets LIFTOFF_GIT_SHA), "" when unknown."""
    sha = environ.get("LIFTOFF_GIT_SHA")
    if sha:
        return sha
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except OSError:
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
