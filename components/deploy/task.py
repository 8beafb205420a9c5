"""deploy (local target): serve a registered version with the real prediction server, wait for
health, predict sample instances, record the check in the registry, stop the server. The vertex
target deploys to a Vertex AI Endpoint instead (vertex.py).

    check = deploy_local(model_ref="llm-finetune-debug@3", registry_dir=".liftoff/registry",
                         instances=["What is 2+3?"])
"""

from __future__ import annotations

import time

from serving.local import LocalServer, brief
from serving.registry import LocalRegistry


def deploy_local(
    *,
    model_ref: str,
    registry_dir: str,
    instances: list,
    parameters: dict | None = None,
    pipeline_run: str = "",
) -> dict:
    """The deployment record (instances, predictions, health) also stored in the registry."""
    registry = LocalRegistry(registry_dir)
    version = registry.resolve(model_ref)
    with LocalServer(version.model_dir) as server:
        server.wait_healthy()
        response = server.predict(instances, parameters or {})
    predictions = response["predictions"]
    if len(predictions) != len(instances):
        raise RuntimeError(
            f"deploy: {len(instances)} instances gave {len(predictions)} predictions"
        )
    record = {
        "target": "local",
        "pipeline_run": pipeline_run,
        "checked_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "healthy": True,
        "instances": instances,
        "predictions": predictions,
    }
    registry.record_deployment(version.ref, record)
    for instance, prediction in zip(instances, predictions, strict=True):
        print(f"deploy: {brief(instance)} -> {prediction!r}", flush=True)
    return record
