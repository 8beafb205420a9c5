"""The local deploy KFP component (see task.py; the vertex twin is in vertex.py)."""

from kfp import dsl

from components.images import STAND_IN_IMAGE


@dsl.component(base_image=STAND_IN_IMAGE, install_kfp_package=False)
def deploy_local(
    model_ref: str,
    registry_dir: str,
    instances: list,
    max_new_tokens: int = 16,
    pipeline_run: str = "",
) -> int:
    """Serve the registered version locally, health-check it, predict; returns how many
    predictions came back."""
    from components.deploy.task import deploy_local

    record = deploy_local(
        model_ref=model_ref,
        registry_dir=registry_dir,
        instances=instances,
        parameters={"max_new_tokens": max_new_tokens},
        pipeline_run=pipeline_run,
    )
    return len(record["predictions"])
