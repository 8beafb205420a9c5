"""Every test here compiles with the golden files' fixed images (LIFTOFF_*_IMAGE), and sees no
liftoff settings from outside; tests of where images come from unset them."""

import pytest

from pipelines.images import ENV
from tests.pipelines.golden import IMAGES

SETTINGS_ENV = ("PROJECT", "REGION", "PIPELINE_ROOT", "SERVICE_ACCOUNT", "API_ENDPOINT")


@pytest.fixture(autouse=True)
def fixed_images(monkeypatch):
    for name, variable in ENV.items():
        monkeypatch.setenv(variable, IMAGES[name])
    for name in SETTINGS_ENV + ("IMAGE_REPO", "IMAGE_VERSION"):
        # vertex_fake, set up after this, sets LIFTOFF_API_ENDPOINT again.
        monkeypatch.delenv(f"LIFTOFF_{name}", raising=False)
