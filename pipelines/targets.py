"""The two targets a pipeline definition runs on; the one module that branches on the target.

    target = LocalTarget(run_dir=".liftoff/runs/r1", registry_dir=".liftoff/registry")
    target = VertexTarget(hardware=get_profile("a100x8").with_options(scheduling="SPOT"))
    pipeline_func = llm_finetune.build(target)

A pipeline asks its target for the training op, the register step and the deploy step. Locally
these are lightweight components run by kfp.local (GCPC ops cannot run there); on Vertex, the
training component is wrapped in a CustomJob and register/deploy are GCPC ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pipelines.hardware import SERVING_DEFAULT, Profile, get_profile


@dataclass(kw_only=True)
class LocalTarget:
    run_dir: str  # this run's checkpoints and W&B files
    registry_dir: str
    nproc_per_node: int = 1  # > 1: DDP over CPU processes (gloo)

    name = "local"

    def training_op(self, component):
        return component

    def train(self, op, *, service_account, base_output_dir, **inputs):
        """The training task; the service account and output directory matter on Vertex."""
        return op(
            checkpoint_dir=os.path.join(self.run_dir, "checkpoints"),
            nproc_per_node=self.nproc_per_node,
            wandb_dir=self.wandb_dir,
            **inputs,
        )

    @property
    def wandb_dir(self) -> str:
        return os.path.join(self.run_dir, "wandb")

    def register(self, *, model, eval_metrics, model_uri, model_name, aliases, labels, **_):
        from components.register.component import register_local

        return register_local(
            model=model,
            eval_metrics=eval_metrics,
            model_name=model_name,
            registry_dir=self.registry_dir,
            aliases=aliases,
            labels=labels,
            pipeline_run=_run_name(),
        ).output

    def deploy(self, *, registered, model_name, instances, **_):
        from components.deploy.component import deploy_local

        return deploy_local(
            model_ref=registered,
            registry_dir=self.registry_dir,
            instances=instances,
            pipeline_run=_run_name(),
        )


@dataclass(kw_only=True)
class VertexTarget:
    hardware: Profile
    serving: Profile = get_profile(SERVING_DEFAULT)
    timeout: str = "604800s"

    name = "vertex"
    wandb_dir = ""  # the CustomJob's own disk; runs sync online with the key from Secret Manager

    def train(self, op, *, service_account, base_output_dir, **inputs):
        return op(
            service_account=service_account,
            base_output_directory=base_output_dir,
            location=_job_region(),
            nproc_per_node=self.hardware.processes_per_node,
            wandb_dir="",
            **inputs,
        )

    def training_op(self, component):
        """The component as a CustomJob on this target's hardware. Call it outside the
        pipeline function: called inside it, the wrapper breaks (kfp#9320)."""
        from google_cloud_pipeline_components.v1.custom_job import (
            create_custom_training_job_from_component,
        )

        hw = self.hardware
        return create_custom_training_job_from_component(
            component,
            display_name=component.name,
            replica_count=hw.nodes,
            machine_type=hw.machine_type,
            accelerator_type=hw.accelerator_type,
            accelerator_count=hw.accelerator_count,
            boot_disk_size_gb=hw.boot_disk_gb,
            timeout=self.timeout,
            restart_job_on_worker_restart=hw.nodes > 1,
            strategy=hw.scheduling,
        )

    def register(self, *, model_uri, model_name, aliases, labels, parent_model, **_):
        from components.register.vertex import register_vertex

        return register_vertex(
            model_uri=model_uri,
            model_name=model_name,
            parent_model=parent_model,
            version_aliases=aliases,
            labels=labels,
        )

    def deploy(self, *, registered, model_name, endpoint, traffic_split, **_):
        from components.deploy.vertex import deploy_vertex

        return deploy_vertex(
            model=registered,
            model_name=model_name,
            endpoint=endpoint,
            traffic_split=traffic_split,
            serving=self.serving,
        )


def _run_name() -> str:
    from kfp import dsl

    return dsl.PIPELINE_JOB_NAME_PLACEHOLDER


def _job_region() -> str:
    from components.register.vertex import JOB_REGION

    return JOB_REGION
