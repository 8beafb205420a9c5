"""Checks before spend: what a run would only find out inside the pipeline (after preparing data
and training on GPUs) is checked here first, by `liftoff run`, `compile`, `submit` and anything
else that starts runs (schedules), before anything is compiled or sent.

    check_params(pipeline, {"preset": "qwen2.5-0.5b", "overrides": ["optim.lr=1e-4"]},
                 target="vertex")
    check_labels({"team": "ml"})
    check_reachable("http://127.0.0.1:8080")      # a loopback API endpoint answers at all

Each failure is one ValueError line naming the parameter, the value and what is allowed (the
CLI's exit 2). Hardware is checked where profiles are made (pipelines/hardware.py), images where
they are resolved (pipelines/images.py).
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from serving.registry import ALIAS, NAME
from trainers.common.config import apply_overrides
from trainers.common.secrets import check_secret_name

MAX_LABELS = 64
# GCP label rules, restricted to ASCII: keys start with a lowercase letter; both keys and
# values use lowercase letters, digits, `_` and `-`, at most 63 characters (values may be empty).
_LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
_LABEL_RULE = "lowercase letters, digits, '_' and '-', at most 63 characters"
MAX_DISPLAY_NAME = 128  # a Vertex Model's display name
# parameter -> the resource name it takes
RESOURCES = {"parent_model": "models", "endpoint": "endpoints"}
_RESOURCE = "projects/{s}/locations/{s}/{kind}/[^/@\\s]+"
REMOTE = ("gs://", "/gcs/")  # what a Vertex job can read
# A pipeline parameter -> the trainer config field it sets (as the pipeline's steps pass it).
PARAM_FIELDS = {
    "data": "data.train",
    "eval_data": "data.eval",
    "max_steps": "train.max_steps",
    "seed": "train.seed",
    "lora": "lora.enabled",
    "on_bad_record": "data.on_bad_record",
    "wandb_project": "wandb.project",
    "wandb_secret": "wandb.secret",
}
SECRETS = ("wandb_secret", "hf_secret")
CONNECT_TIMEOUT_S = 3.0


def check_params(pipeline, params: Mapping, *, target: str) -> None:
    """`params`: the run's parameter values (the declared defaults fill the rest); `target`:
    "local" or "vertex"."""
    values = {p.name: p.default for p in pipeline.parameters()} | dict(params)
    check_numbers(values)
    for name in SECRETS:
        check_secret(name, values[name])
    cfg = trainer_config(pipeline, values)
    check_secret("overrides: wandb.secret", cfg.wandb.secret)
    if values["gate_metric"] not in pipeline.gate_metrics:
        choices = ", ".join(pipeline.gate_metrics)
        raise ValueError(f"gate_metric: {values['gate_metric']!r} must be one of {choices}")
    check_model_name(values["model_name"], target=target)
    for alias in values["version_aliases"]:
        if not isinstance(alias, str) or not ALIAS.fullmatch(alias):
            raise ValueError(f"version_aliases: {alias!r} must match {ALIAS.pattern}")
    check_labels(values["model_labels"], what="model_labels")
    for name in ("data", "eval_data"):
        check_data(name, values[name], target=target)
    for name, kind in RESOURCES.items():
        check_resource(name, values[name], kind=kind)


def check_numbers(values: Mapping) -> None:
    """Counts that cannot be negative and thresholds that must be numbers: each would
    otherwise be silently ignored (max_steps=-5 trains the preset's steps) or fail late."""
    if values["max_steps"] < 0:
        raise ValueError(f"max_steps: {values['max_steps']} must be >= 0 (0 keeps the preset's)")
    if values["seed"] < -1:
        raise ValueError(f"seed: {values['seed']} must be >= 0 (-1 keeps the preset's)")
    if not math.isfinite(values["gate_threshold"]):
        raise ValueError(f"gate_threshold: {values['gate_threshold']} must be a finite number")


def check_secret(name: str, value: str) -> None:
    """`value` empty or a Secret Manager version name; a wrong one is refused without being
    shown (trainers/common/secrets.py): it may be the key itself, which must never reach a
    request, a job or a log."""
    if value:
        check_secret_name(value, what=name)


def trainer_config(pipeline, values: Mapping):
    """The trainer config the run's steps resolve from the preset and every override (the
    same fields the pipeline's steps set from its parameters)."""
    overrides = values["overrides"]
    if not all(isinstance(item, str) for item in overrides):
        raise ValueError(f"overrides: {overrides!r} must be section.field=value strings")
    flags = [f"data.on_bad_record={values['on_bad_record']}"]
    if values["max_steps"] > 0:
        flags.append(f"train.max_steps={values['max_steps']}")
    if values["seed"] >= 0:
        flags.append(f"train.seed={values['seed']}")
    if values["lora"]:
        flags.append("lora.enabled=true")
    return apply_overrides(pipeline.presets(values["preset"]), [*flags, *overrides])


def check_resource(name: str, value: str, *, kind: str) -> None:
    """`value` empty or a Vertex resource name: projects/P/locations/R/KIND/ID."""
    if value and not re.fullmatch(_RESOURCE.format(s="[^/\\s]+", kind=kind), value):
        raise ValueError(f"{name}: {value!r} is not projects/PROJECT/locations/REGION/{kind}/ID")


def check_model_name(name: str, *, target: str) -> None:
    if target == "local" and not NAME.fullmatch(name):
        raise ValueError(f"model_name: {name!r} must match {NAME.pattern} (the local registry)")
    if not 0 < len(name) <= MAX_DISPLAY_NAME:
        raise ValueError(f"model_name: {name!r} must be 1 to {MAX_DISPLAY_NAME} characters")


def check_data(name: str, path: str, *, target: str) -> None:
    """Vertex reads only gs:// (or its /gcs/ mount); locally, a path must exist."""
    if not path or path.startswith("gs://"):
        return
    if target == "vertex" and not path.startswith(REMOTE):
        raise ValueError(f"{name}: {path!r} is on this machine; a Vertex job reads gs:// paths")
    if target == "local" and not os.path.exists(path):
        raise ValueError(f"{name}: {path!r}: no such file or directory")


def check_labels(labels: Mapping[str, str], *, what: str = "label") -> None:
    """Raise a one-line ValueError naming the first label GCP would reject."""
    if len(labels) > MAX_LABELS:
        raise ValueError(f"{what}: at most {MAX_LABELS} labels are allowed, got {len(labels)}")
    for key, value in labels.items():
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key):
            raise ValueError(f"{what}: key {key!r} is invalid: start with a letter; {_LABEL_RULE}")
        if not isinstance(value, str) or not _LABEL_VALUE.fullmatch(value):
            raise ValueError(f"{what}: {key}={value!r} has an invalid value: {_LABEL_RULE}")


def check_reachable(endpoint: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A RuntimeError (one line) unless something accepts connections at `endpoint`'s host and
    port within `timeout_s`: a loopback emulator that is not running fails here, in seconds,
    instead of after the SDK's retries."""
    parts = urlsplit(endpoint)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise RuntimeError(f"Vertex AI endpoint {endpoint}: nothing answers ({reason})") from None
