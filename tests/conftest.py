"""Every test runs offline: no hub downloads, W&B offline, anonymous loopback endpoints only."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.pop("WANDB_API_KEY", None)
os.environ.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

pytest_plugins = [
    "tests.support.gcs_emulator",
    "tests.support.kfp_registry_fake",
    "tests.support.logging_fake",
    "tests.support.secret_manager_fake",
    "tests.support.tiny_vlm",
    "tests.support.vertex_fake",
]
