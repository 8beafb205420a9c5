"""The two targets a pipeline runs on; the one module that branches on the target.

    target = LocalTarget(run_dir=".liftoff/runs/r1", registry_dir=".liftoff/registry")
    target = VertexTarget(hardware=get_profile("a100x8").with_options(scheduling="SPOT"),
                          images=Images(trainer="...", serving="..."))
    pipeline_func = LLM_FINETUNE.build(target)

A pipeline asks its target for the training op of each stage, for the machine of its other
steps, and for the register and deploy steps. Locally these are lightweight components run by
kfp.local (GCPC ops cannot run there); on Vertex the training component runs as a CustomJob,
the other trainer steps get the trainer image and a machine sized from the hardware profile, and
register/deploy are GCPC ops.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

from components.images import Images
from components.register.vertex import JOB_REGION, JOB_SERVICE_ACCOUNT
from pipelines.hardware import PREPARE_STEP, SERVING_DEFAULT, Profile, StepMachine, get_profile
from trainers.common.distributed import GPUS_ENV


@dataclass(kw_only=True)
class LocalTarget:
    run_dir: str  # this run's checkpoints and W&B files
    registry_dir: str
    nproc_per_node: int = 1  # > 1: DDP over CPU processes (gloo)

    name = "local"

    def training_op(self, component, *, stage):
        return _renamed(component, stage.name)

    def train(self, op, *, stage, **inputs):
        return op(
            checkpoint_dir=os.path.join(self.run_dir, "checkpoints", stage.name),
            nproc_per_node=self.nproc_per_node,
            wandb_dir=self.wandb_dir,
            **inputs,
        )

    def prepare_step(self, task):
        return task

    def evaluate_step(self, task):
        return task

    @property
    def wandb_dir(self) -> str:
        return os.path.join(self.run_dir, "wandb")

    def register(self, *, model, eval_metrics, model_name, aliases, labels, **_):
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

    def deploy(self, *, registered, instances, **_):
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
    images: Images
    serving: Profile = get_profile(SERVING_DEFAULT)
    # Interactive shells into the training VMs (the CustomJob's webAccessUris; liftoff status).
    web_access: bool = False

    name = "vertex"
    wandb_dir = ""  # the job's own disk; runs sync online with the key from Secret Manager

    def training_op(self, component, *, stage):
        """The component as a CustomJob on this target's hardware, running as the pipeline
        job's own service account. Call it outside the pipeline function: called inside it,
        the wrapper breaks (kfp#9320)."""
        from google_cloud_pipeline_components.v1.custom_job import (
            create_custom_training_job_from_component,
        )

        hw = self.hardware
        return create_custom_training_job_from_component(
            _with_image(_renamed(component, stage.name), self.images.trainer),
            display_name=stage.name,
            replica_count=hw.nodes,
            machine_type=hw.machine_type,
            accelerator_type=hw.accelerator_type,
            accelerator_count=hw.accelerator_count,
            boot_disk_type=hw.boot_disk_type,
            boot_disk_size_gb=hw.boot_disk_gb,
            timeout=f"{hw.timeout_s}s",
            restart_job_on_worker_restart=hw.nodes > 1,
            strategy=hw.scheduling,
            service_account=JOB_SERVICE_ACCOUNT,
            enable_web_access=self.web_access,
            # The GPUs each node must have: the trainer stops at once if CUDA sees fewer.
            env=[{"name": GPUS_ENV, "value": str(hw.accelerator_count)}],
        )

    def train(self, op, *, stage, **inputs):
        from kfp import dsl

        return op(
            # Resolved per run, so every run (scheduled ones too) checkpoints in its own place.
            base_output_directory=(
                f"{dsl.PIPELINE_ROOT_PLACEHOLDER}/{dsl.PIPELINE_JOB_NAME_PLACEHOLDER}/{stage.name}"
            ),
            location=JOB_REGION,
            nproc_per_node=self.hardware.processes_per_node,
            wandb_dir="",
            **inputs,
        )

    def prepare_step(self, task):
        return _on(task.set_container_image(self.images.trainer), PREPARE_STEP)

    def evaluate_step(self, task):
        return _on(task.set_container_image(self.images.trainer), self.hardware.eval_step)

    def register(self, *, model_uri, model_name, aliases, default_version, labels, **rest):
        from components.register.vertex import register_vertex

        return register_vertex(
            model_uri=model_uri,
            model_name=model_name,
            parent_model=rest["parent_model"],
            version_aliases=aliases,
            default_version=default_version,
            labels=labels,
            hf_secret=rest["hf_secret"],
            serving_image=self.images.serving,
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


def _on(task, machine: StepMachine):
    """`task` on a machine with `machine`'s vCPUs, memory and GPUs (Vertex picks the closest)."""
    task.set_cpu_limit(str(machine.cpu)).set_memory_limit(f"{machine.memory_gb}G")
    if machine.accelerator_count:
        task.set_accelerator_type(machine.accelerator_type)
        task.set_accelerator_limit(machine.accelerator_count)
    return task


def _renamed(component, name: str):
    """`component` under another name: a stage's task and CustomJob are named after it."""
    if component.name == name:
        return component
    renamed = copy.deepcopy(component)
    renamed.name = renamed.component_spec.name = name
    return renamed


def _with_image(component, image: str):
    """A copy of `component` that runs in `image`; the CustomJob wrapper reads it from there."""
    copied = copy.deepcopy(component)
    copied.component_spec.implementation.container.image = image
    return copied


def _run_name() -> str:
    from kfp import dsl

    return dsl.PIPELINE_JOB_NAME_PLACEHOLDER
