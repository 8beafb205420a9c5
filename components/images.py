"""The container images a compiled pipeline runs, and the digests the build pinned.

    images = Images(trainer="us-central1-docker.pkg.dev/P/liftoff/trainer@sha256:...",
                    serving="us-central1-docker.pkg.dev/P/liftoff/serving-gpu@sha256:...")
    PINNED["serving-gpu"]                       # what the build pinned, "" when nothing did

Cloud Build pushes `trainer`, `serving` (CPU torch) and `serving-gpu` (CUDA torch) and then
rewrites the three defaults below with their digests (`python -m components.pin_images`), so a
pipeline compiled in that build names exactly the bytes that were tested. In a checkout they are
empty: nothing has published an image for it yet, and `liftoff compile`/`submit` take the images
from flags, LIFTOFF_*_IMAGE or the project's Artifact Registry instead (pipelines/images.py).

The components' own `base_image` is a stand-in: the local target runs every component in this
interpreter, and the vertex target sets each task's image from an `Images` at compile time.
"""

from __future__ import annotations

from dataclasses import dataclass

from google_cloud_pipeline_components._image import GCPC_IMAGE_TAG

DEFAULT_TRAINER_IMAGE = ""
DEFAULT_SERVING_IMAGE = ""
DEFAULT_SERVING_GPU_IMAGE = ""
# By the name each image has in the registry (cloudbuild.yaml pushes REPO/trainer, ...).
PINNED = {
    "trainer": DEFAULT_TRAINER_IMAGE,
    "serving": DEFAULT_SERVING_IMAGE,
    "serving-gpu": DEFAULT_SERVING_GPU_IMAGE,
}

# What a trainer component is decorated with; the vertex target replaces it on every task.
STAND_IN_IMAGE = "liftoff/trainer:stand-in"
# The image of Google's own pipeline steps (GCPC), which every Vertex run of these pipelines
# pulls anyway: it has python3 and kfp, all that a small step (the gate, the version aliases)
# needs, and it spares those steps the multi-GB trainer image.
GOOGLE_STEPS_IMAGE = GCPC_IMAGE_TAG


@dataclass(frozen=True, kw_only=True)
class Images:
    """The images one compiled pipeline names."""

    trainer: str  # every trainer step: prepare_data, train, evaluate
    serving: str  # the serving build for the deploy profile: serving-gpu when it has GPUs

    def __post_init__(self) -> None:
        check_pinned(self.trainer, what="trainer image")
        check_pinned(self.serving, what="serving image")


def serving_name(*, accelerated: bool) -> str:
    """The serving build that uses the machine it is deployed on: CUDA torch on a GPU."""
    return "serving-gpu" if accelerated else "serving"


def check_pinned(image: str, *, what: str) -> None:
    """Raise a one-line ValueError unless `image` names one build: a digest or a version tag."""
    name = image.rsplit("/", 1)[-1]
    if "/" not in image or not name:
        raise ValueError(f"{what}: {image!r} is not an image reference (HOST/PATH/NAME:TAG)")
    if "@sha256:" not in image and (":" not in name or name.endswith(":latest")):
        raise ValueError(f"{what}: {image!r} is not pinned: use a digest or a version tag")
