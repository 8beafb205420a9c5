"""liftoff's trainers as W&B Launch jobs: image jobs with a form, and runs enqueued on them.

    create_job("llm", image="us-docker.pkg.dev/P/liftoff/trainer@sha256:...", entity="team")
    submit("llm", queue="vertex-a100", preset="qwen2.5-0.5b", sets=["optim.lr=1e-4"])

A job is a W&B artifact of type `job` whose `wandb-job.json` names the image and the entry point
(`python -m trainers.llm`; wandb's own `job create` makes image jobs without one, and the trainer
image has no ENTRYPOINT), and whose `input_schemas` metadata is a JSON schema over the run
config, which the W&B UI turns into a form. A launched run's `overrides.run_config` reaches the
trainer as `WANDB_CONFIG`, which `wandb.init` merges into the run's config; the trainer reads its
hyperparameters back from there (trainers.common.training), so those values win. `preset` picks
the whole base config, so the runner also passes it as `--preset`.

Adding a trainer to TRAINERS makes it launchable: the CLI, the form and the checks follow.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import tempfile
from dataclasses import dataclass

from trainers.common.config import apply_overrides, to_dict

DEFAULT_PROJECT = "liftoff"
# The form's fields (run config paths) and their help; each type comes from the config itself.
FORM_FIELDS = {
    "data.train": "training records: JSONL or Parquet, gs:// or /gcs/ (empty: synthetic set)",
    "data.eval": "eval records (empty: a content-hash split of the training records)",
    "train.max_steps": "optimizer steps",
    "train.global_batch_size": "packed sequences per optimizer step, over all GPUs",
    "train.micro_batch_size": "packed sequences per forward pass on one GPU",
    "train.seed": "random seed",
    "optim.lr": "peak learning rate",
    "optim.warmup_steps": "linear warmup steps",
    "optim.weight_decay": "AdamW weight decay",
    "lora.enabled": "train LoRA adapters instead of all weights",
    "lora.r": "LoRA rank",
    "checkpoint.every_steps": "steps between checkpoints (a preempted run resumes from the last)",
}
_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}
_TAG = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True, kw_only=True)
class Trainer:
    name: str  # as the CLI takes it: `liftoff launch submit llm`
    module: str  # the entry point: `python -m MODULE`
    description: str
    fields: tuple[str, ...] = tuple(FORM_FIELDS)

    @property
    def job_name(self) -> str:
        return f"liftoff-{self.name}"

    def _presets(self):
        return importlib.import_module(f"{self.module}.presets")

    def preset_names(self) -> list[str]:
        return list(self._presets().PRESETS)

    def get_preset(self, name: str):
        return self._presets().get_preset(name)


TRAINERS = {
    t.name: t
    for t in (
        Trainer(name="llm", module="trainers.llm", description="supervised fine-tuning of an LLM"),
        Trainer(name="vlm", module="trainers.vlm", description="vision-language training, DDP"),
    )
}


def get_trainer(name: str) -> Trainer:
    if name not in TRAINERS:
        raise ValueError(f"TRAINER: unknown trainer {name!r}; choose from {', '.join(TRAINERS)}")
    return TRAINERS[name]


def input_schema(trainer: Trainer) -> dict:
    """The JSON schema of the job's form (the subset of JSON schema that W&B Launch accepts)."""
    defaults = to_dict(trainer.get_preset("debug"))
    properties: dict = {
        "preset": {
            "type": "string",
            "title": "preset",
            "description": "the base config; the fields below change it",
            "enum": trainer.preset_names(),
        }
    }
    for path in trainer.fields:
        section, name = path.split(".")
        value = defaults[section][name]  # KeyError: a form field the trainer does not have
        group = properties.setdefault(section, {"type": "object", "properties": {}})
        group["properties"][name] = {
            "type": _JSON_TYPES[type(value)],
            "title": path,
            "description": FORM_FIELDS[path],
        }
    return {"type": "object", "properties": properties}


def job_source(trainer: Trainer, *, image: str) -> dict:
    """The `wandb-job.json` of an image job that runs `python -m MODULE` in `image`."""
    from wandb.sdk.data_types._dtypes import TypeRegistry

    defaults = to_dict(trainer.get_preset("debug"))
    return {
        "_version": "v0",
        "source_type": "image",
        "source": {"image": image, "entrypoint": ["python", "-m", trainer.module], "args": []},
        "input_types": TypeRegistry.type_of(defaults).to_json(),
        "output_types": TypeRegistry.type_of({}).to_json(),
        "runtime": "",
    }


def create_job(trainer_name: str, *, image: str, entity: str | None, project: str) -> str:
    """Create (or update) the trainer's job; return its name, ENTITY/PROJECT/NAME:vN."""
    trainer = get_trainer(trainer_name)
    if "/" not in image:
        raise ValueError(f"--image: {image!r} is not an image URI (REGISTRY/REPO/NAME[:TAG|@sha])")
    from wandb.sdk.artifacts._internal_artifact import InternalArtifact

    artifact = InternalArtifact(
        trainer.job_name,
        type="job",
        description=f"liftoff {trainer.name}: {trainer.description} (python -m {trainer.module})",
        metadata={"input_schemas": {"@wandb.config": input_schema(trainer)}},
    )
    with artifact.new_file("wandb-job.json") as f:
        json.dump(job_source(trainer, image=image), f, indent=2)
    with artifact.new_file("requirements.frozen.txt") as f:
        f.write("")  # the image has them; wandb's own image jobs carry this file empty too
    aliases = ["latest", *_tag(image)]
    return _log_job(artifact, aliases=aliases, entity=entity, project=project)


def _tag(image: str) -> list[str]:
    """The image's tag as a job alias, as wandb's job builder does (none for a digest)."""
    name = image.rsplit("/", 1)[-1]
    tag = name.rsplit(":", 1)[-1] if ":" in name and "@" not in name else ""
    return [tag] if _TAG.fullmatch(tag) else []


def _log_job(artifact, *, aliases: list[str], entity: str | None, project: str) -> str:
    """Log `artifact` from a hidden run that is deleted afterwards, as `wandb job create` does."""
    import wandb

    with tempfile.TemporaryDirectory(prefix="liftoff-job-") as tmp:
        run = wandb.init(
            dir=tmp,
            entity=entity,
            project=project,
            job_type="cli_create_job",
            settings={"silent": True, "disable_job_creation": True},
        )
        run.log_artifact(artifact, aliases=aliases)
        artifact.wait()
        run.finish()
    wandb.Api().run(f"{run.entity}/{run.project}/{run.id}").delete()
    return f"{run.entity}/{run.project}/{artifact.name}"


def run_config(trainer: Trainer, *, preset: str, sets: list[str]) -> dict:
    """`overrides.run_config` for a run: the preset and each `--set` value, typed and checked
    against the trainer's own config (a bad field or value is refused before anything is sent)."""
    resolved = to_dict(apply_overrides(trainer.get_preset(preset), sets))
    config: dict = {"preset": preset}
    for item in sets:
        keys = item.partition("=")[0].strip().split(".")
        value = resolved
        for key in keys:
            value = value[key]
        node = config
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = value
    return config


def submit(
    trainer_name: str,
    *,
    queue: str,
    preset: str,
    sets: list[str],
    entity: str | None = None,
    project: str = DEFAULT_PROJECT,
) -> dict:
    """Enqueue a run of the trainer's job on `queue`; return {"item", "queue", "run_config"}."""
    trainer = get_trainer(trainer_name)
    config = run_config(trainer, preset=preset, sets=sets)
    from wandb.sdk.launch._launch_add import launch_add

    entity = entity or _default_entity()
    queued = launch_add(
        job=f"{entity}/{project}/{trainer.job_name}:latest",
        config={"overrides": {"run_config": config}},
        queue_name=queue,
        entity=entity,
        project=project,
    )
    return {"item": queued.id, "queue": queue, "run_config": config}


def _default_entity() -> str:
    """WANDB_ENTITY, else the entity of the W&B key in use."""
    from wandb.sdk.launch.api import LaunchApi

    return os.environ.get("WANDB_ENTITY") or LaunchApi().default_entity
