"""register (local target): the trained model becomes the next version of a model in the local
registry, with its evaluation metrics, labels and lineage, the W&B run that trained it among
them. The vertex target uploads to the Vertex AI Model Registry instead (vertex.py).

    ref = register_local(model_uri="out/model", registry_dir=".liftoff/registry", ...)
"""

from __future__ import annotations

import json
import os

from serving.registry import LocalRegistry
from trainers.common.outputs import METADATA_FILE


def register_local(
    *,
    model_uri: str,
    registry_dir: str,
    model_name: str,
    metrics: dict,
    aliases: list[str] = (),
    labels: dict | None = None,
    lineage: dict | None = None,
) -> str:
    """Register; return the new version's reference, NAME@VERSION."""
    lineage = {**(lineage or {})}
    wandb_run = training_wandb_run(model_uri)
    if wandb_run:
        lineage["wandb_run"] = wandb_run
    version = LocalRegistry(registry_dir).register(
        model_name,
        model_uri,
        metrics={k: float(v) for k, v in metrics.items()},
        labels=labels,
        lineage=lineage,
        aliases=list(aliases),
    )
    print(f"register: {version.ref} (aliases {', '.join(version.aliases)})", flush=True)
    return version.ref


def training_wandb_run(model_dir: str) -> dict:
    """The W&B run the trainer recorded in the model's `training_metadata.json` (id, project,
    group, url or the offline run's directory), or {} when it logged to none."""
    path = os.path.join(model_dir, METADATA_FILE)
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f).get("wandb") or {}
