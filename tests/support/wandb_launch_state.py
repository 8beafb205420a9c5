"""The launch half of tests.support.wandb_backend: run queues, their items and launch agents,
as W&B's server keeps them for `launch_add`, `Api.create_run_queue` and the launch agent."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass
class Queue:
    id: str
    entity: str
    name: str
    resource: str
    config: dict  # the default resource config: {"resource_args": {resource: {...}}}


@dataclass
class QueueItem:
    id: str
    queue: Queue
    run_spec: dict
    state: str = "PENDING"  # PENDING -> LEASED (popped) -> CLAIMED (acked) | FAILED
    run_name: str | None = None
    failure: dict | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Agent:
    id: str
    name: str
    entity: str
    queues: list[str]
    config: dict
    version: str
    statuses: list[str] = field(default_factory=list)
    stop_polling: bool = False


class LaunchState:
    def __init__(self, backend) -> None:
        self.backend = backend
        self.configs: dict[str, dict] = {}  # default resource configs by id
        self.queues: dict[str, Queue] = {}  # by name
        self.items: dict[str, QueueItem] = {}  # by id, in push order
        self.agents: dict[str, Agent] = {}

    def op_CreateProject(self, variables: dict) -> dict:  # noqa: N802 (W&B's names)
        entity, name = variables["input"]["entityName"], variables["input"]["name"]
        number = self.backend.project_number(entity, name)
        project = {
            "id": str(number),
            "name": name,
            "entityName": entity,
            "description": None,
            "access": "PRIVATE",
            "views": "{}",
        }
        return {"result": {"project": project, "model": project, "inserted": True}}

    def op_CreateDefaultResourceConfig(self, variables: dict) -> dict:  # noqa: N802
        config_id = f"config-{len(self.configs) + 1}"
        self.configs[config_id] = {
            "resource": variables["resource"],
            "config": json.loads(variables["config"]),
        }
        return {
            "createDefaultResourceConfig": {"defaultResourceConfigID": config_id, "success": True}
        }

    def op_CreateRunQueue(self, variables: dict) -> dict:  # noqa: N802
        config = self.configs.get(variables.get("defaultResourceConfigID") or "", {})
        queue = Queue(
            id=f"queue-{len(self.queues) + 1}",
            entity=variables["entity"],
            name=variables["queueName"],
            resource=config.get("resource", "local-container"),
            config=config.get("config", {}),
        )
        self.queues[queue.name] = queue
        return {"createRunQueue": {"success": True, "queueID": queue.id}}

    def op_pushToRunQueueByName(self, variables: dict) -> dict:  # noqa: N802
        queue = self.queues.get(variables["queueName"])
        if queue is None:
            return {"pushToRunQueueByName": None}
        item = self.push(queue, json.loads(variables["runSpec"]))
        result = {"runQueueItemId": item.id, "runSpec": json.dumps(item.run_spec)}
        return {"pushToRunQueueByName": result}

    def push(self, queue: Queue, spec: dict) -> QueueItem:
        """Enqueue `spec` as the server does: the queue's resource and default resource config,
        with the spec's own resource_args merged over it."""
        spec = {**spec, "resource": queue.resource}
        spec["resource_args"] = _merge(
            queue.config.get("resource_args", {}), spec.get("resource_args") or {}
        )
        item = QueueItem(id=f"rqi-{len(self.items) + 1}", queue=queue, run_spec=spec)
        self.items[item.id] = item
        return item

    # -- the agent ---------------------------------------------------------------------------

    def op_ProjectRunQueues(self, variables: dict) -> dict:  # noqa: N802
        queues = [
            {"id": q.id, "name": q.name, "createdBy": q.entity, "access": "PROJECT"}
            for q in self.queues.values()
            if q.entity == variables["entity"]
        ]
        return {"project": {"runQueues": queues}}

    def op_createLaunchAgent(self, variables: dict) -> dict:  # noqa: N802
        names = {q.id: q.name for q in self.queues.values()}
        agent = Agent(
            id=f"agent-{len(self.agents) + 1}",
            name=f"agent-{len(self.agents) + 1}",
            entity=variables["entity"],
            queues=[names[i] for i in variables["queues"]],
            config=json.loads(variables.get("agentConfig") or "{}"),
            version=variables.get("version") or "",
        )
        self.agents[agent.id] = agent
        return {"createLaunchAgent": {"launchAgentId": agent.id}}

    def op_LaunchAgent(self, variables: dict) -> dict:  # noqa: N802
        agent = self.agents[variables["agentId"]]
        return {
            "launchAgent": {
                "id": agent.id,
                "name": agent.name,
                "runQueues": agent.queues,
                "hostname": "loopback",
                "agentStatus": agent.statuses[-1] if agent.statuses else "POLLING",
                "stopPolling": agent.stop_polling,
                "heartbeatAt": "2026-01-01T00:00:00",
            }
        }

    def op_updateLaunchAgent(self, variables: dict) -> dict:  # noqa: N802
        self.agents[variables["agentId"]].statuses.append(variables["agentStatus"])
        return {"updateLaunchAgent": {"success": True}}

    def op_EntityIsTeam(self, variables: dict) -> dict:  # noqa: N802
        return {"entity": {"id": f"entity:{variables['entity']}", "isTeam": False}}

    def op_popFromRunQueue(self, variables: dict) -> dict:  # noqa: N802
        for item in self.items.values():
            if item.queue.name == variables["queueName"] and item.state == "PENDING":
                item.state = "LEASED"
                # An object here, though pushToRunQueueByName answers a string: the agent uses
                # this runSpec as it comes, and launch_add parses that one.
                spec = json.loads(json.dumps(item.run_spec))
                return {"popFromRunQueue": {"runQueueItemId": item.id, "runSpec": spec}}
        return {"popFromRunQueue": None}

    def op_ackRunQueueItem(self, variables: dict) -> dict:  # noqa: N802
        item = self.items[variables["itemId"]]
        item.state, item.run_name = "CLAIMED", variables["runId"]
        return {"ackRunQueueItem": {"success": True}}

    def op_failRunQueueItem(self, variables: dict) -> dict:  # noqa: N802
        item = self.items[variables["runQueueItemId"]]
        item.state = "FAILED"
        item.failure = {"message": variables["message"], "stage": variables["stage"]}
        return {"failRunQueueItem": {"success": True}}

    def op_updateRunQueueItemWarning(self, variables: dict) -> dict:  # noqa: N802
        self.items[variables["runQueueItemId"]].warnings.append(variables["message"])
        return {"updateRunQueueItemWarning": {"success": True}}

    def op_RunStoppedStatus(self, variables: dict) -> dict:  # noqa: N802
        run = self._run(variables["entityName"], variables["projectName"], variables["runId"])
        return {"project": {"run": {"stopped": run.stopped} if run else None}}

    def op_RunState(self, variables: dict) -> dict:  # noqa: N802
        run = self._run(variables["entity"], variables["project"], variables["name"])
        return {"project": {"run": {"state": run.state} if run else None}}

    def _run(self, entity: str, project: str, name: str):
        return self.backend.runs.get(f"{entity}/{project}/{name}")


def _merge(base: dict, over: dict) -> dict:
    merged = json.loads(json.dumps(base))
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged
