"""The local register KFP component (see task.py; the vertex twin is in vertex.py)."""

from kfp import dsl
from kfp.dsl import Input, Metrics, Model

from components.images import STAND_IN_IMAGE


@dsl.component(base_image=STAND_IN_IMAGE, install_kfp_package=False)
def register_local(
    model: Input[Model],
    eval_metrics: Input[Metrics],
    model_name: str,
    registry_dir: str,
    aliases: list = [],  # noqa: B006 - KFP reads defaults from the signature
    labels: dict = {},  # noqa: B006
    pipeline_run: str = "",
) -> str:
    """Add the model to the local registry as a new version; returns NAME@VERSION."""
    from components.register.task import register_local

    labels = {**labels, "pipeline_run": pipeline_run}
    lineage = {"pipeline_run": pipeline_run, "model_artifact": model.uri, **model.metadata}
    return register_local(
        model_uri=model.path,
        registry_dir=registry_dir,
        model_name=model_name,
        metrics=eval_metrics.metadata,
        aliases=aliases,
        labels=labels,
        lineage=lineage,
    )
