"""Reading a compiled pipeline (KFP IR YAML) in tests: the training CustomJob's inputs and every
task at every level of the DAG.

    spec = yaml.safe_load(Path("vlm-ddp.yaml").read_text())
    pools = train_input(spec, "worker_pool_specs")
    gated = {name for component, name, _ in tasks(spec) if component != "root"}
"""

from __future__ import annotations

from collections.abc import Iterator

SECRET_CANARY = "wandb-key-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c1e"


def train_input(spec: dict, name: str):
    """The default of one input of the train component (on Vertex, the CustomJob wrapper)."""
    return spec["components"]["comp-train"]["inputDefinitions"]["parameters"][name]["defaultValue"]


def tasks(spec: dict) -> Iterator[tuple[str, str, dict]]:
    """(component name, task name, task) for every task at every level of the DAG."""
    for comp_name, comp in [("root", spec["root"]), *spec["components"].items()]:
        for task_name, task in comp.get("dag", {}).get("tasks", {}).items():
            yield comp_name, task_name, task


def constant(task: dict, name: str):
    """The constant a task passes for input parameter `name`."""
    return task["inputs"]["parameters"][name]["runtimeValue"]["constant"]
