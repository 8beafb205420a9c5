"""register (local target): the trained model becomes the next version of a model in the local
registry, with its evaluation metrics, labels and lineage. The vertex target uploads to the
Vertex AI Model Registry instead (vertex.py).

    ref = register_local(model_uri="out/model", registry_dir=".liftoff/registry", ...)
"""

from __future__ import annotations

from serving.registry import LocalRegistry


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
