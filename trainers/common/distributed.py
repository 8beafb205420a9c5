"""Process groups and multi-node rendezvous for trainers run as `python -m trainers.X`.

A trainer calls `relaunch_under_torchrun(...)` first: outside torchrun, on a node with several
GPUs or in a multi-node job, it re-executes itself through `torch.distributed.run` with one
process per GPU and the rendezvous taken from Vertex's CLUSTER_SPEC (primary = workerpool0[0];
node rank 0 for workerpool0, index+1 for the other pools) or MASTER_ADDR/MASTER_PORT/WORLD_SIZE/
RANK (nodes). Then `init()` joins the group: nccl on GPU, gloo on CPU.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass

DEFAULT_PORT = 29500
# The GPUs each node of the job has (the vertex target's CustomJob sets it from the hardware
# profile). With it, a node where CUDA sees fewer stops instead of training on the CPU.
GPUS_ENV = "LIFTOFF_GPUS_PER_NODE"


@dataclass(frozen=True)
class Rendezvous:
    master_addr: str
    master_port: int
    num_nodes: int
    node_rank: int


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def rendezvous_from_env(env: dict[str, str]) -> Rendezvous:
    """Node-level rendezvous: CLUSTER_SPEC first, else MASTER_* with WORLD_SIZE/RANK as nodes."""
    if env.get("CLUSTER_SPEC"):
        return _from_cluster_spec(json.loads(env["CLUSTER_SPEC"]))
    return Rendezvous(
        master_addr=env.get("MASTER_ADDR", "127.0.0.1"),
        master_port=int(env.get("MASTER_PORT", DEFAULT_PORT)),
        num_nodes=int(env.get("WORLD_SIZE", 1)),
        node_rank=int(env.get("RANK", 0)),
    )


def _from_cluster_spec(spec: dict) -> Rendezvous:
    cluster, task = spec["cluster"], spec["task"]
    host, _, port = cluster["workerpool0"][0].partition(":")
    # Training nodes are workerpool0 (the primary) and workerpool1; workerpool2 is a reduction
    # server and workerpool3 evaluators, which never join the torch rendezvous.
    num_nodes = 1 + len(cluster.get("workerpool1", []))
    if task["type"] not in ("workerpool0", "workerpool1"):
        raise ValueError(f"CLUSTER_SPEC task type {task['type']!r} is not a training node")
    node_rank = 0 if task["type"] == "workerpool0" else int(task["index"]) + 1
    return Rendezvous(
        master_addr=host,
        master_port=int(port or DEFAULT_PORT),
        num_nodes=num_nodes,
        node_rank=node_rank,
    )


def procs_per_node() -> int:
    """One process per GPU; LIFTOFF_NPROC_PER_NODE sets it (e.g. CPU DDP with gloo)."""
    if os.environ.get("LIFTOFF_NPROC_PER_NODE"):
        return int(os.environ["LIFTOFF_NPROC_PER_NODE"])
    import torch

    return max(1, torch.cuda.device_count())


def torchrun_argv(module: str, args: list[str], rdzv: Rendezvous, nproc: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={rdzv.num_nodes}",
        f"--node_rank={rdzv.node_rank}",
        f"--nproc_per_node={nproc}",
        f"--master_addr={rdzv.master_addr}",
        f"--master_port={rdzv.master_port}",
        "-m",
        module,
        *args,
    ]


def require_gpus(env: dict[str, str]) -> None:
    """Stop this process (exit 1, one line) when the job's machine has GPUs (`GPUS_ENV`) and
    CUDA sees fewer of them, e.g. a host driver older than the one torch was built for: falling
    back to the CPU would run for days on a GPU bill."""
    expected = int(env.get(GPUS_ENV) or 0)
    if not expected:
        return
    import torch

    found = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if found < expected:
        sys.stderr.write(
            f"error: this node should have {expected} GPU(s) ({GPUS_ENV}) but CUDA sees {found} "
            f"(torch {torch.__version__}, CUDA {torch.version.cuda}): not training on the CPU\n"
        )
        sys.stderr.flush()
        raise SystemExit(1)


def relaunch_under_torchrun(module: str, args: list[str]) -> None:
    """Replace this process by torchrun when more than one process is needed; else return.
    First, a job that should have GPUs and does not see them stops (`require_gpus`)."""
    require_gpus(dict(os.environ))
    if "LOCAL_RANK" in os.environ:
        return  # already a torchrun worker
    rdzv = rendezvous_from_env(dict(os.environ))
    nproc = procs_per_node()
    if rdzv.num_nodes * nproc == 1:
        return
    # exec keeps the PID, so Vertex's SIGTERM reaches torchrun, which forwards it to workers.
    argv = torchrun_argv(module, args, rdzv, nproc)
    os.execv(argv[0], argv)


def init() -> Dist:
    """Join the process group torchrun set up (a no-op for a single process)."""
    import torch
    import torch.distributed as dist

    world_size = int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    device = f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    if device != "cpu":
        torch.cuda.set_device(local_rank)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device != "cpu" else "gloo")
    return Dist(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=local_rank,
        world_size=world_size,
        device=device,
    )


def barrier(d: Dist) -> None:
    if d.world_size > 1:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_sum(value: float, d: Dist) -> float:
    if d.world_size == 1:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return float(t.item())


def all_reduce_sums(values: list[float], d: Dist) -> list[float]:
    """Several sums in one collective (one round trip instead of one per value)."""
    if d.world_size == 1:
        return list(values)
    import torch
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    dist.all_reduce(t)
    return t.tolist()


def all_gather_objects(value, d: Dist) -> list:
    """Every rank's `value` (picklable), in rank order, on every rank."""
    if d.world_size == 1:
        return [value]
    import torch.distributed as dist

    gathered = [None] * d.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def shutdown(d: Dist) -> None:
    if d.world_size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
