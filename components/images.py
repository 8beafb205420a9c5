"""The container images the components run in, pinned. Cloud Build rewrites the two defaults
below with the digests of the images it has just pushed (`python -m components.pin_images`), so
a compiled pipeline names exactly the bytes that were tested; between builds a release tag pins
them. Point at your own registry at compile time with LIFTOFF_TRAINER_IMAGE and
LIFTOFF_SERVING_IMAGE.
"""

import os

DEFAULT_TRAINER_IMAGE = "us-docker.pkg.dev/liftoff-ml/liftoff/trainer:0.1.0"
DEFAULT_SERVING_IMAGE = "us-docker.pkg.dev/liftoff-ml/liftoff/serving:0.1.0"


def pinned(variable: str, default: str) -> str:
    """The image from `variable` or the default; an unpinned reference is refused."""
    image = os.environ.get(variable) or default
    name = image.rsplit("/", 1)[-1]
    if "@sha256:" not in image and (":" not in name or name.endswith(":latest")):
        raise ValueError(f"{variable}={image!r}: pin the image by digest or a version tag")
    return image


TRAINER_IMAGE = pinned("LIFTOFF_TRAINER_IMAGE", DEFAULT_TRAINER_IMAGE)
SERVING_IMAGE = pinned("LIFTOFF_SERVING_IMAGE", DEFAULT_SERVING_IMAGE)
