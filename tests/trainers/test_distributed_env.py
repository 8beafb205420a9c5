"""trainers.common.distributed, the pure parts: node rendezvous from Vertex's CLUSTER_SPEC or
MASTER_*/WORLD_SIZE/RANK, and the torchrun command line.

Run: `.venv/bin/pytest -q tests/trainers/test_distributed_env.py`.
"""

from __future__ import annotations

import json
import sys

import pytest

from trainers.common.distributed import (
    DEFAULT_PORT,
    Dist,
    Rendezvous,
    rendezvous_from_env,
    torchrun_argv,
)

CLUSTER = {
    "workerpool0": ["cmle-training-workerpool0-ab12-0:2222"],
    "workerpool1": [
        "cmle-training-workerpool1-ab12-0:2222",
        "cmle-training-workerpool1-ab12-1:2222",
        "cmle-training-workerpool1-ab12-2:2222",
    ],
}


def _spec_env(task_type: str, index: int, cluster: dict = CLUSTER) -> dict[str, str]:
    spec = {
        "cluster": cluster,
        "environment": "cloud",
        "task": {"type": task_type, "index": index},
        "job": "{}",
    }
    return {"CLUSTER_SPEC": json.dumps(spec)}


@pytest.mark.parametrize(
    ("task_type", "index", "node_rank"),
    [("workerpool0", 0, 0), ("workerpool1", 0, 1), ("workerpool1", 1, 2), ("workerpool1", 2, 3)],
)
def test_cluster_spec_node_ranks(task_type, index, node_rank):
    rdzv = rendezvous_from_env(_spec_env(task_type, index))
    assert rdzv == Rendezvous(
        master_addr="cmle-training-workerpool0-ab12-0",
        master_port=2222,
        num_nodes=4,
        node_rank=node_rank,
    )


def test_cluster_spec_wins_over_master_vars():
    env = {
        **_spec_env("workerpool1", 1),
        "MASTER_ADDR": "10.0.0.9",
        "MASTER_PORT": "1234",
        "WORLD_SIZE": "9",
        "RANK": "5",
    }
    assert rendezvous_from_env(env) == Rendezvous(
        master_addr="cmle-training-workerpool0-ab12-0", master_port=2222, num_nodes=4, node_rank=2
    )


def test_single_node_cluster_spec():
    env = _spec_env("workerpool0", 0, {"workerpool0": ["host-0:2222"]})
    assert rendezvous_from_env(env) == Rendezvous(
        master_addr="host-0", master_port=2222, num_nodes=1, node_rank=0
    )


def test_cluster_spec_without_port_uses_the_default():
    env = _spec_env("workerpool1", 0, {"workerpool0": ["chief"], "workerpool1": ["w0"]})
    rdzv = rendezvous_from_env(env)
    assert (rdzv.master_addr, rdzv.master_port, rdzv.num_nodes, rdzv.node_rank) == (
        "chief",
        DEFAULT_PORT,
        2,
        1,
    )


def test_master_vars():
    env = {"MASTER_ADDR": "10.0.0.2", "MASTER_PORT": "29400", "WORLD_SIZE": "3", "RANK": "2"}
    assert rendezvous_from_env(env) == Rendezvous(
        master_addr="10.0.0.2", master_port=29400, num_nodes=3, node_rank=2
    )


@pytest.mark.parametrize("env", [{}, {"CLUSTER_SPEC": ""}])
def test_defaults(env):
    assert rendezvous_from_env(env) == Rendezvous(
        master_addr="127.0.0.1", master_port=29500, num_nodes=1, node_rank=0
    )


def test_torchrun_argv():
    rdzv = Rendezvous(master_addr="chief", master_port=2222, num_nodes=2, node_rank=1)
    argv = torchrun_argv(
        "trainers.llm", ["--preset", "debug", "--set", "train.max_steps=5"], rdzv, 8
    )
    assert argv == [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--node_rank=1",
        "--nproc_per_node=8",
        "--master_addr=chief",
        "--master_port=2222",
        "-m",
        "trainers.llm",
        "--preset",
        "debug",
        "--set",
        "train.max_steps=5",
    ]


def test_dist_defaults_are_a_single_cpu_process():
    d = Dist()
    assert (d.rank, d.local_rank, d.world_size, d.device, d.is_main) == (0, 0, 1, "cpu", True)
    assert not Dist(rank=3, world_size=4).is_main


def test_reduction_server_pool_is_not_a_training_node():
    cluster = {**CLUSTER, "workerpool2": ["reducer-0:2222", "reducer-1:2222"]}
    assert rendezvous_from_env(_spec_env("workerpool1", 2, cluster)).num_nodes == 4
    with pytest.raises(ValueError, match="'workerpool2' is not a training node"):
        rendezvous_from_env(_spec_env("workerpool2", 0, cluster))
