"""The loopback W&B backend for the launch tests (the Vertex and Secret Manager fakes come from
the root conftest)."""

from tests.support.wandb_backend import wandb_backend  # noqa: F401 (a fixture)
