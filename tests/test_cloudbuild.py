"""The merge build, cloudbuild.yaml, run step by step on this machine: the Python steps for real
(substitutions filled with loopback values) against the Vertex fake, the GCS emulator and the
KFP registry fake; the gcloud steps' shell with a stub `gcloud` first on PATH; the test step with
a stub `make`; the docker steps checked for arguments, context and tags.

    .venv/bin/python -m pytest -q tests/test_cloudbuild.py

One module fixture runs the whole build once in a copy of the repository, each wave of steps whose
waits are over at once, as Cloud Build does; the tests read what each step left behind.
"""

import hashlib
import json
import re
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fsspec
import pytest
import yaml

from tests.support.cloudbuild import (
    BUILTINS,
    ROOT,
    Workspace,
    load_build,
    rendered_steps,
    substitute,
    substitutions,
)
from tests.support.compiled import constant, tasks, train_input
from tests.support.kfp_registry_fake import KfpRegistryFake
from tests.support.vertex_fake import ENDPOINT_ENV, VertexFake

PYTHON_IMAGE = (
    "python:3.11.11-bookworm"
    "@sha256:4ca910a51a1a474e5d95aa52455331b2a94272eeae3c498be1ad7a2ff9b00bf3"
)
DOCKER_IMAGE = "gcr.io/cloud-builders/docker:24.0.9"
SDK_IMAGE = "gcr.io/google.com/cloudsdktool/cloud-sdk:531.0.0-slim"
PROJECT, SHA = BUILTINS["PROJECT_ID"], BUILTINS["SHORT_SHA"]
FAILING = "debug-run, ending FAILED"
IMAGES = f"us-central1-docker.pkg.dev/{PROJECT}/liftoff"
CI_ENDPOINT = f"projects/{PROJECT}/locations/us-central1/endpoints/liftoff-ci"
# Each call appends {"tool", "args", "cwd"} to $STUB_LOG. gcloud answers in the format asked
# for, else YAML (as gcloud does): a digest derived from the image reference; the deployed model
# ids in $STUB_DEPLOYED, or NOT_FOUND with $STUB_NO_ENDPOINT set.
STUB = """import hashlib, json, os, sys
args, tool = sys.argv[1:], os.path.basename(sys.argv[0])
with open(os.environ["STUB_LOG"], "a") as log:
    log.write(json.dumps({"tool": tool, "args": args, "cwd": os.getcwd()}) + "\\n")
if tool == "make":
    sys.exit(0)
if args[:4] == ["artifacts", "docker", "images", "describe"]:
    digest = "sha256:" + hashlib.sha256(args[4].encode()).hexdigest()
    asked = "--format=value(image_summary.digest)" in args
    print(digest if asked else f"image_summary:\\n  digest: {digest}")
elif args[:3] == ["ai", "endpoints", "describe"]:
    if os.environ.get("STUB_NO_ENDPOINT"):
        sys.exit(f"ERROR: (gcloud.ai.endpoints.describe) NOT_FOUND: {args[3]}")
    ids = os.environ.get("STUB_DEPLOYED", "")
    asked = "--format=value(deployedModels[].id)" in args
    print(ids if asked else f"deployedModels: {ids.split(';')}")
elif args[:3] != ["ai", "endpoints", "undeploy-model"]:
    sys.exit(f"stub gcloud: unexpected arguments {args}")
"""


def digest_of(reference: str) -> str:
    """What the stub gcloud answers for an image reference."""
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def pinned(name: str) -> str:
    return f"{IMAGES}/{name}@{digest_of(f'{IMAGES}/{name}:{SHA}')}"


class MergeBuild:
    """cloudbuild.yaml's steps run in dependency order in a workspace; what they left behind."""

    def __init__(self, tmp: Path, *, kfp: KfpRegistryFake, vertex: VertexFake):
        self.kfp, self.vertex = kfp, vertex
        self.workspace = Workspace.create(tmp)
        for tool in ("gcloud", "make"):
            self.workspace.stub(tool, STUB)
        # The SDK image's python3: no site-packages, so pin_images must need none.
        self.workspace.stub(
            "python3",
            "import os, sys\nos.execv(sys.executable, [sys.executable, '-S', *sys.argv[1:]])\n",
        )
        self.log = tmp / "stub.jsonl"
        self.log.touch()
        self.given = {**BUILTINS, "_KFP_HOST": kfp.add_repository(PROJECT, "liftoff-pipelines")}
        self.steps = self.rendered(_PIPELINE_ROOT=fresh_pipeline_root())
        self.done: dict[str, subprocess.CompletedProcess] = {}

    def rendered(self, **given: str) -> dict[str, dict]:
        build = load_build()
        return rendered_steps(build, substitutions(build, {**self.given, **given}))

    def run(self, step: str | dict, **env: str) -> subprocess.CompletedProcess:
        step = self.steps[step] if isinstance(step, str) else step
        done = self.workspace.run(step, env={"STUB_LOG": str(self.log), **env})
        self.done[step["id"]] = done
        return done

    def run_all(self, *, beside: dict[str, tuple[dict, dict]]) -> None:
        """Every step but the docker ones, each wave of steps whose waits are over at once, as
        Cloud Build runs them; `beside[id]`, a (step, env), runs alongside step `id`."""
        waits = direct_waits(load_build())
        finished = {i for i, step in self.steps.items() if step["name"] == DOCKER_IMAGE}
        while len(finished) < len(self.steps):
            wave = [i for i in self.steps if i not in finished and waits[i] <= finished]
            runs = [(self.steps[i], {}) for i in wave] + [beside[i] for i in wave if i in beside]
            with ThreadPoolExecutor(len(runs)) as pool:
                list(pool.map(lambda run: self.run(run[0], **run[1]), runs))
            for i in wave:
                done = self.done[i]
                assert done.returncode == 0, f"{i}:\n{done.stdout}\n{done.stderr}"
            finished.update(wave)

    def calls(self, tool: str) -> list[dict]:
        records = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [r for r in records if r["tool"] == tool]

    def file(self, name: str) -> Path:
        return self.workspace.path / name


def fresh_pipeline_root() -> str:
    """A pipeline root in a bucket that does not exist yet: the SDK creates it in the emulator.
    An existing one would have its owner checked through Resource Manager over gRPC, which
    nothing on loopback answers (the subprocess retries for ~60 s, then carries on)."""
    return f"gs://ci-{uuid.uuid4().hex[:12]}/pipelines"


@pytest.fixture(scope="module")
def merge(tmp_path_factory, gcs_emulator):
    """The build, run once. Beside the debug run, the same step against a Vertex whose run
    ends FAILED."""
    kfp, vertex, failing = KfpRegistryFake(), VertexFake(), VertexFake()
    failing.final_state = "PIPELINE_STATE_FAILED"
    for fake in (vertex, failing):
        fake.running_polls = 0  # --wait polls in the subprocess at the SDK's 5 s pace
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ENDPOINT_ENV, vertex.url)
        build = MergeBuild(tmp_path_factory.mktemp("merge"), kfp=kfp, vertex=vertex)
        variant = build.rendered(_PIPELINE_ROOT=fresh_pipeline_root())["debug-run"]
        beside = {"debug-run": ({**variant, "id": FAILING}, {ENDPOINT_ENV: failing.url})}
        build.run_all(beside=beside)
        yield build
    for fake in (kfp, vertex, failing):
        fake.close()


def direct_waits(build: dict) -> dict[str, set[str]]:
    """Each step id -> the steps it waits for (Cloud Build's rules: no waitFor means every
    earlier step, ["-"] none); only earlier steps may be named."""
    waits: dict[str, set[str]] = {}
    for step in build["steps"]:
        named = step.get("waitFor", list(waits))
        waits[step["id"]] = set() if named == ["-"] else set(named)
        assert waits[step["id"]] <= waits.keys() - {step["id"]}, f"{step['id']}: bad waitFor"
    return waits


def _wait_graph(build: dict) -> dict[str, set[str]]:
    """Each step id -> every step it transitively waits for."""
    graph: dict[str, set[str]] = {}
    for step_id, direct in direct_waits(build).items():
        graph[step_id] = direct.union(*(graph[d] for d in direct))
    return graph


# --- the configuration -------------------------------------------------------------------------


def test_every_builder_image_is_pinned_and_python_steps_share_one():
    names = {step["id"]: step["name"] for step in load_build()["steps"]}
    assert set(names.values()) == {PYTHON_IMAGE, DOCKER_IMAGE, SDK_IMAGE}
    python_steps = [i for i, name in names.items() if name == PYTHON_IMAGE]
    assert {"test", "compile-llm-finetune", "upload", "debug-run"} <= set(python_steps)


def test_every_substitution_is_defined_and_every_dollar_escaped():
    build = load_build()
    values = substitutions(build, BUILTINS)
    rendered = rendered_steps(build, values)  # raises on an undefined name or a bare $
    assert '--trainer "$images/trainer@$trainer"' in rendered["pin"]["args"][-1]  # $$ is $
    with pytest.raises(KeyError):
        substitute("${_TYPO}", values)
    with pytest.raises(ValueError, match="unescaped"):
        substitute("echo $x", values)
    assert all(not str(v).count("${_") for v in build["substitutions"].values()), (
        "a default may name built-ins only"
    )


def test_no_secret_values_and_options():
    text = (ROOT / "cloudbuild.yaml").read_text()
    assert "WANDB_API_KEY" not in text and "BEGIN PRIVATE KEY" not in text
    # A value after key=, token: ... is a secret unless it is a Secret Manager resource name.
    value = r"(?i)(api_key|token|password|secret)\s*[=:]\s*['\"]?(?!projects/)\w{8,}"
    assert not re.search(value, text)
    assert re.search(value, "WANDB_TOKEN=abcdef0123456789")  # the guard can fail
    assert not re.search(r"\b[0-9a-f]{40}\b", text)
    options = load_build()["options"]
    assert options["logging"] == "CLOUD_LOGGING_ONLY" and options["dynamicSubstitutions"] is True
    assert int(load_build()["timeout"].rstrip("s")) >= 3600


def test_steps_wait_for_what_they_need_and_nothing_more():
    graph = _wait_graph(load_build())
    assert graph["test"] == set() and graph["empty-ci-endpoint"] == set()
    for image in ("trainer", "serving", "serving-gpu"):
        assert graph[f"build-{image}"] == {"test"}
        assert graph[f"push-{image}"] == {"test", f"build-{image}"}
        assert f"push-{image}" in graph["pin"]
    assert "pin" in graph["compile-llm-finetune"] and "pin" in graph["compile-vlm-ddp"]
    assert {"compile-llm-finetune", "compile-vlm-ddp"} <= graph["upload"]
    assert {"upload", "empty-ci-endpoint"} <= graph["debug-run"]
    assert "debug-run" in graph["empty-ci-endpoint-after"]


def test_docker_steps_build_from_the_root_and_push_what_pin_reads_and_images_lists(merge):
    steps = [s for s in merge.steps.values() if s["name"] == DOCKER_IMAGE]
    builds = {s["id"]: s["args"] for s in steps if s["args"][0] == "build"}
    pushes = {s["args"][1] for s in steps if s["args"][0] == "push"}
    tags = {}
    for step_id, args in builds.items():
        assert args[-1] == "." and "dir" not in merge.steps[step_id], "context: the repository root"
        assert (ROOT / args[args.index("-f") + 1]).is_file()
        tags[step_id] = args[args.index("-t") + 1]
    expected = {f"build-{n}": f"{IMAGES}/{n}:{SHA}" for n in ("trainer", "serving", "serving-gpu")}
    assert tags == expected
    assert pushes == set(tags.values())
    images = {substitute(i, substitutions(load_build(), BUILTINS)) for i in load_build()["images"]}
    assert images == set(tags.values())
    described = {
        c["args"][4] for c in merge.calls("gcloud") if c["args"][:2] == ["artifacts", "docker"]
    }
    assert described == set(tags.values())
    # The serving images differ only where they must: the torch wheel, and the tag.
    cpu, gpu = builds["build-serving"], builds["build-serving-gpu"]
    assert [a for a in gpu if a not in cpu] == [
        "--build-arg",
        "TORCH=cuda",
        tags["build-serving-gpu"],
    ]


# --- the steps, run ----------------------------------------------------------------------------


def test_test_step_lints_and_tests_at_the_root(merge):
    assert [(c["args"], c["cwd"]) for c in merge.calls("make")] == [
        (["lint"], str(merge.workspace.path)),
        (["test"], str(merge.workspace.path)),
    ]
    # Both install first, from the lock (a dry run of the checkout's Makefile, forced).
    dry = subprocess.run(
        ["make", "-n", "-B", "lint", "test"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert re.search(r"pip install -q -c requirements\.lock --no-build-isolation -e", dry.stdout)
    assert "hadolint" in dry.stdout and "pytest" in dry.stdout


def test_pin_step_writes_the_pushed_digests_into_images_py(merge):
    source = merge.file("components/images.py").read_text()
    for variable, name in (
        ("DEFAULT_TRAINER_IMAGE", "trainer"),
        ("DEFAULT_SERVING_IMAGE", "serving"),
        ("DEFAULT_SERVING_GPU_IMAGE", "serving-gpu"),
    ):
        assert f'{variable} = "{pinned(name)}"' in source
    # The checkout itself is untouched.
    assert digest_of(f"{IMAGES}/trainer:{SHA}") not in (ROOT / "components/images.py").read_text()


def _our_images(text: str) -> set[str]:
    return set(re.findall(rf"{re.escape(IMAGES)}/[\w-]+[@:][\w:]+", text))


def test_compiled_templates_name_only_the_pinned_images(merge):
    llm = merge.file("llm-finetune.yaml").read_text()
    vlm = merge.file("vlm-ddp.yaml").read_text()
    # Their serving profile (l4x1 by default) has a GPU: the CUDA serving build.
    assert _our_images(llm) == _our_images(vlm) == {pinned("trainer"), pinned("serving-gpu")}
    spec = yaml.safe_load(llm)
    (pool,) = train_input(spec, "worker_pool_specs")
    assert pool["machine_spec"]["machine_type"] == "a2-highgpu-1g"  # _TEMPLATE_HARDWARE


def test_upload_step_pushes_both_templates_tagged_with_the_commit_and_latest(merge):
    uploads = [r for r in merge.kfp.requests if r.method == "POST"]
    assert [r.path for r in uploads] == [f"/{PROJECT}/liftoff-pipelines"] * 2
    assert [r.form["tags"] for r in uploads] == [f"{SHA},latest".encode()] * 2
    contents = {merge.file(n).read_bytes() for n in ("llm-finetune.yaml", "vlm-ddp.yaml")}
    assert {r.form["content"] for r in uploads} == contents
    (repository,) = merge.kfp.repositories.values()
    assert sorted(repository.packages) == ["llm-finetune", "vlm-ddp"]
    assert all(set(p.tags) == {SHA, "latest"} for p in repository.packages.values())


def test_debug_run_trains_and_serves_on_cpu_deploys_to_the_ci_endpoint_and_waits(merge):
    creates = [
        r for r in merge.vertex.requests if r.method == "POST" and r.path.endswith("/pipelineJobs")
    ]
    (create,) = creates
    assert create.path == f"/v1/projects/{PROJECT}/locations/us-central1/pipelineJobs"
    params = create.body["runtimeConfig"]["parameterValues"]
    assert params["endpoint"] == CI_ENDPOINT
    assert params["model_name"] == "llm-finetune-ci"
    assert params["wandb_secret"] == f"projects/{PROJECT}/secrets/wandb-api-key/versions/latest"
    assert create.body["labels"]["git-sha"] == SHA
    assert create.body["serviceAccount"] == f"liftoff-pipelines@{PROJECT}.iam.gserviceaccount.com"
    root = create.body["runtimeConfig"]["gcsOutputDirectory"]
    gcs = fsspec.filesystem("gs")
    gcs.invalidate_cache()
    assert gcs.exists(root.split("/")[2])  # the SDK made the pipeline root's bucket

    spec = create.body["pipelineSpec"]
    (pool,) = train_input(spec, "worker_pool_specs")
    assert pool["machine_spec"] == {"machine_type": "n1-standard-8"}  # no accelerator
    deploys = [
        t
        for _, _, t in tasks(spec)
        if "dedicated_resources_machine_type" in t.get("inputs", {}).get("parameters", {})
    ]
    assert [constant(t, "dedicated_resources_machine_type") for t in deploys] == ["n1-standard-8"]
    assert _our_images(json.dumps(spec)) == {pinned("trainer"), pinned("serving")}
    # --wait: the job was read back until it ended, and the step says how.
    assert any(r.method == "GET" and "/pipelineJobs/" in r.path for r in merge.vertex.requests)
    assert "state: PIPELINE_STATE_SUCCEEDED" in merge.done["debug-run"].stdout


def test_a_failed_debug_run_fails_the_build(merge):
    done = merge.done[FAILING]
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()[-1:]
    assert "PIPELINE_STATE_FAILED" in line and line.startswith("liftoff submit: error:")


def test_ci_endpoint_is_emptied_before_and_after_the_run(merge):
    describes = [
        c["args"] for c in merge.calls("gcloud") if c["args"][:3] == ["ai", "endpoints", "describe"]
    ]
    assert len(describes) == 2  # empty-ci-endpoint and empty-ci-endpoint-after
    assert all(
        a[3] == "liftoff-ci" and "--region=us-central1" in a and f"--project={PROJECT}" in a
        for a in describes
    )


def test_emptying_undeploys_every_model_handing_traffic_on(merge):
    before = len(merge.calls("gcloud"))
    done = merge.run("empty-ci-endpoint-after", STUB_DEPLOYED="111;222;333")
    assert done.returncode == 0, done.stderr
    undeploys = [c["args"] for c in merge.calls("gcloud")[before:] if "undeploy-model" in c["args"]]
    flags = [[a for a in args if a.startswith(("--deployed", "--traffic"))] for args in undeploys]
    assert flags == [
        ["--deployed-model-id=111", "--traffic-split=222=100"],
        ["--deployed-model-id=222", "--traffic-split=333=100"],
        ["--deployed-model-id=333"],
    ]
    assert all(args[3] == "liftoff-ci" and f"--project={PROJECT}" in args for args in undeploys)


def test_emptying_a_missing_endpoint_fails_and_undeploys_nothing(merge):
    before = len(merge.calls("gcloud"))
    done = merge.run("empty-ci-endpoint", STUB_NO_ENDPOINT="1")
    assert done.returncode != 0 and "NOT_FOUND" in done.stderr
    assert [c["args"][2] for c in merge.calls("gcloud")[before:]] == ["describe"]
    usage = merge.workspace.run(
        {"id": "usage", "entrypoint": "bash", "args": [".ci/empty-endpoint"]}
    )
    assert usage.returncode == 2 and usage.stderr.startswith("usage: .ci/empty-endpoint")
