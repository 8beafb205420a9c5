"""The local model registry: versions, aliases, name rules, resolve errors, relative paths, and
two processes registering at once.

    .venv/bin/python -m pytest -q tests/serving/test_registry.py

A "model" here is a directory with a config.json: what the registry checks and copies.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil

import pytest

from serving.registry import LocalRegistry

NUM_EACH = 12  # versions each of two processes registers


@pytest.fixture
def model_dir(tmp_path) -> str:
    path = tmp_path / "model"
    path.mkdir()
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "weights.bin").write_bytes(b"\x00" * 1024)
    return str(path)


@pytest.fixture
def registry(tmp_path) -> LocalRegistry:
    return LocalRegistry(str(tmp_path / "registry"))


def test_versions_count_up_and_latest_follows_the_newest(registry, model_dir):
    first = registry.register("m", model_dir, metrics={"loss": 1.0}, aliases=["prod"])
    second = registry.register("m", model_dir, metrics={"loss": 0.5})
    assert (first.ref, first.aliases) == ("m@1", ["latest", "prod"])
    assert (second.ref, second.aliases) == ("m@2", ["latest"])
    assert registry.resolve("m@1").aliases == ["prod"]
    assert registry.resolve("m").ref == registry.resolve("m@latest").ref == "m@2"
    assert [v.ref for v in registry.versions()] == ["m@1", "m@2"]
    assert registry.resolve("m@2").metrics == {"loss": 0.5}


def test_an_alias_moves_between_versions_and_is_deleted_from_its_own(registry, model_dir):
    for _ in range(3):
        registry.register("m", model_dir, metrics={})
    assert registry.set_alias("m@1", "prod").aliases == ["prod"]
    assert registry.set_alias("m@2", "prod").aliases == ["prod"]
    assert registry.resolve("m@1").aliases == []
    assert registry.set_alias("m@1", "latest").aliases == ["latest"]  # a rollback
    assert registry.resolve("m").ref == "m@1"
    with pytest.raises(ValueError, match=r"alias 'prod' is not on m@1 \(it is on m@2\)"):
        registry.delete_alias("m@1", "prod")
    assert registry.delete_alias("m@2", "prod").aliases == []
    with pytest.raises(ValueError, match="cannot be deleted"):
        registry.delete_alias("m@1", "latest")
    registry.register("m", model_dir, metrics={})  # a new version takes latest back
    assert registry.resolve("m").ref == "m@4"


@pytest.mark.parametrize(
    "name", ["Model", "my model", "../escape", "", "-m", "m/x", "a" * 129, "m@", "é"]
)
def test_names_that_are_refused(registry, model_dir, name):
    with pytest.raises(ValueError, match="model name"):
        registry.register(name, model_dir, metrics={})
    assert registry.names() == []


@pytest.mark.parametrize("name", ["m", "llm-finetune", "a.b_c-9", "0", "a" * 128])
def test_names_that_are_taken(registry, model_dir, name):
    assert registry.register(name, model_dir, metrics={}).ref == f"{name}@1"


@pytest.mark.parametrize("alias", ["Prod", "7", "p", "prod-", "-prod", "pr od", "prod_1"])
def test_aliases_that_are_refused(registry, model_dir, alias):
    with pytest.raises(ValueError, match=f"alias '{alias}'"):
        registry.register("m", model_dir, metrics={}, aliases=[alias])
    registry.register("m", model_dir, metrics={})
    with pytest.raises(ValueError, match=f"alias '{alias}'"):
        registry.set_alias("m@1", alias)
    assert registry.resolve("m@1").aliases == ["latest"]


RESOLVE_ERRORS = {
    "nosuch": "model 'nosuch' is not in the registry",
    "m@3": "m@3: no such version or alias of m (versions: 1, 2; aliases: latest)",
    "m@prod": "m@prod: no such version or alias",
    "m@0": "after '@' comes a version",
    "m@": "after '@' comes a version",
    "m@Prod": "after '@' comes a version",
    "@2": "model name ''",
    "../m@1": "model name '../m'",
    "m@1@2": "after '@' comes a version",
}


@pytest.mark.parametrize(("ref", "message"), RESOLVE_ERRORS.items(), ids=RESOLVE_ERRORS.keys())
def test_resolve_errors_say_what_there_is(registry, model_dir, ref, message):
    registry.register("m", model_dir, metrics={})
    registry.register("m", model_dir, metrics={})
    with pytest.raises(ValueError) as refused:
        registry.resolve(ref)
    assert message in str(refused.value)
    assert registry.resolve("m@02").ref == "m@2"  # guard: the registry itself resolves


def test_paths_are_relative_so_a_copied_registry_serves_its_own_copy(tmp_path, model_dir):
    registry = LocalRegistry(str(tmp_path / "a"))
    registry.register("m", model_dir, metrics={})
    with open(tmp_path / "a" / "m" / "1" / "version.json") as f:
        assert json.load(f)["model_dir"] == "model"
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    shutil.rmtree(tmp_path / "a")
    version = LocalRegistry(str(tmp_path / "b")).resolve("m@1")
    assert version.model_dir == str(tmp_path / "b" / "m" / "1" / "model")
    assert os.path.isfile(os.path.join(version.model_dir, "weights.bin"))


def test_a_registry_with_absolute_paths_serves_its_own_copy(tmp_path, model_dir):
    registry = LocalRegistry(str(tmp_path / "old"))
    registry.register("m", model_dir, metrics={})
    path = tmp_path / "old" / "m" / "1" / "version.json"
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "model_dir": "/gone/registry/m/1/model"}))
    assert registry.resolve("m@1").model_dir == str(tmp_path / "old" / "m" / "1" / "model")


def test_a_version_still_being_registered_is_not_listed(registry, model_dir):
    registry.register("m", model_dir, metrics={})
    os.makedirs(os.path.join(registry.root, "m", "2", "model"))  # copied, no version.json yet
    assert [v.ref for v in registry.versions()] == ["m@1"]
    with pytest.raises(ValueError, match="no such version"):
        registry.resolve("m@2")
    assert registry.register("m", model_dir, metrics={}).ref == "m@3"


def test_deployments_are_appended(registry, model_dir):
    registry.register("m", model_dir, metrics={}, aliases=["prod"])
    registry.record_deployment("m@prod", {"checked_at": "t1"})
    registry.record_deployment("m@1", {"checked_at": "t2"})
    version = registry.resolve("m@1")
    assert [d["checked_at"] for d in version.deployments] == ["t1", "t2"]
    assert version.aliases == ["latest", "prod"]


def _register_many(root: str, model_dir: str, worker: int, start) -> None:
    registry = LocalRegistry(root)
    start.wait()  # both at once, so their registrations interleave
    for k in range(NUM_EACH):
        registry.register(
            "m", model_dir, metrics={}, lineage={"by": f"{worker}-{k}"}, aliases=[f"w{worker}-{k}"]
        )


def test_two_processes_registering_at_once_lose_nothing(registry, model_dir):
    # spawn: fresh interpreters, so neither inherits this process's threads.
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    workers = [
        context.Process(target=_register_many, args=(registry.root, model_dir, w, start))
        for w in (0, 1)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert [w.exitcode for w in workers] == [0, 0]
    versions = registry.versions()
    assert [v.version for v in versions] == list(range(1, 2 * NUM_EACH + 1))
    made = sorted(v.lineage["by"] for v in versions)
    assert made == sorted(f"{w}-{k}" for w in (0, 1) for k in range(NUM_EACH))
    for v in versions:  # every alias landed on the version registered with it
        assert f"w{v.lineage['by']}" in v.aliases
    assert registry.resolve("m").version == 2 * NUM_EACH
    assert not [f for f in os.listdir(os.path.join(registry.root, "m")) if f.endswith(".tmp")]


def test_registration_records_the_wandb_run_the_trainer_wrote(tmp_path, model_dir):
    from components.register.task import register_local

    root = str(tmp_path / "registry")
    common = {"registry_dir": root, "model_name": "m", "metrics": {"loss": 1}}
    assert register_local(model_uri=model_dir, lineage={"pipeline_run": "r1"}, **common) == "m@1"
    run = {"id": "x1", "project": "liftoff", "group": "r2", "url": "https://wandb.ai/t/liftoff/x1"}
    with open(os.path.join(model_dir, "training_metadata.json"), "w") as f:
        json.dump({"steps": 3, "wandb": run}, f)
    assert register_local(model_uri=model_dir, **common) == "m@2"
    registry = LocalRegistry(root)
    assert registry.resolve("m@1").lineage == {"pipeline_run": "r1"}
    assert registry.resolve("m@2").lineage == {"wandb_run": run}
