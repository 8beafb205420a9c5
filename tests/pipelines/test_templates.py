"""`liftoff templates push/list` against the loopback Artifact Registry KFP repository, and
`liftoff submit --template` running a pushed version against the loopback Vertex fake.

.venv/bin/python -m pytest -q tests/pipelines/test_templates.py
"""

import hashlib
import uuid

import pytest
import yaml

from pipelines.cli import main
from pipelines.templates import parse_template_uri, template_host
from tests.pipelines.contract import custom_job
from tests.pipelines.golden import HERE as GOLDEN

PROJECT, REGION = "proj-1", "europe-west4"
SHA = "7c3f9e10a1b2c3d4e5f60a1b2c3d4e5f6a1b2c3d"
SERVICE_ACCOUNT = "liftoff-pipelines@proj-1.iam.gserviceaccount.com"


@pytest.fixture(autouse=True)
def commit(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFTOFF_GIT_SHA", SHA)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def host(kfp_registry) -> str:
    return kfp_registry.add_repository(PROJECT, "liftoff-pipelines", location=REGION)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_push_compiles_and_uploads_tagged_with_the_commit_and_latest(capsys, kfp_registry, host):
    code, out, err = cli(
        capsys, "templates", "push", "llm-finetune", "--hardware", "a100x1", "--kfp-host", host,
        "--tag", "reviewed",
    )  # fmt: skip

    assert (code, err) == (0, "")
    (upload,) = kfp_registry.requests
    assert (upload.method, upload.path) == ("POST", f"/{PROJECT}/liftoff-pipelines")
    assert upload.form["tags"] == f"{SHA[:7]},latest,reviewed".encode()
    # The same inputs compile to the same bytes: the golden template.
    golden = (GOLDEN / "llm-finetune.yaml").read_bytes()
    assert upload.form["content"] == golden
    version = digest(golden)
    assert out == (
        f"pushed llm-finetune (tags {SHA[:7]}, latest, reviewed): {host}/llm-finetune/{version}\n"
    )


def test_push_bakes_params_into_the_templates_defaults_and_web_access_into_training(
    capsys, kfp_registry, host
):
    code, _, err = cli(
        capsys, "templates", "push", "llm-finetune", "--param", "max_steps=300",
        "--enable-web-access", "--kfp-host", host,
    )  # fmt: skip

    assert (code, err) == (0, "")
    spec = yaml.safe_load(kfp_registry.requests[0].form["content"])
    assert spec["root"]["inputDefinitions"]["parameters"]["max_steps"]["defaultValue"] == 300
    assert custom_job(spec, "train").job_spec.enable_web_access is True
    golden = yaml.safe_load((GOLDEN / "llm-finetune.yaml").read_text())
    assert custom_job(golden, "train").job_spec.enable_web_access is False


def test_push_uploads_compiled_files_as_they_are_and_list_shows_versions(
    capsys, kfp_registry, host
):
    files = [GOLDEN / name for name in ("llm-finetune.yaml", "vlm-ddp.yaml")]
    assert cli(capsys, "templates", "push", *map(str, files), "--kfp-host", host)[0] == 0
    spot = GOLDEN / "llm-finetune-a100x8-2nodes-spot.yaml"
    code, _, _ = cli(capsys, "templates", "push", str(spot), "--kfp-host", host, "--tag", "spot")
    assert code == 0
    assert [r.form["content"] for r in kfp_registry.requests] == [
        *(f.read_bytes() for f in files),
        spot.read_bytes(),
    ]

    kfp_registry.requests.clear()
    code, out, err = cli(capsys, "templates", "list", "llm-finetune", "--kfp-host", host)
    assert (code, err) == (0, "")
    packages = f"/{PROJECT}/liftoff-pipelines/packages"
    assert [(r.method, r.path) for r in kfp_registry.requests] == [
        ("GET", f"{packages}/llm-finetune/versions")
    ]
    # Newest first; the upload moved `latest` (and the commit's tag) to the spot version.
    rows = [(line.split()[:2], line[63:]) for line in out.splitlines()[1:]]
    assert rows == [
        (["llm-finetune", digest(spot.read_bytes())[:19]], f"{SHA[:7]}, latest, spot"),
        (["llm-finetune", digest((GOLDEN / "llm-finetune.yaml").read_bytes())[:19]], "-"),
    ]
    kfp_registry.requests.clear()
    code, out, _ = cli(capsys, "templates", "list", "--kfp-host", host)
    assert [r.path for r in kfp_registry.requests] == [
        packages,
        f"{packages}/llm-finetune/versions",
        f"{packages}/vlm-ddp/versions",
    ]
    assert code == 0 and [line.split()[0] for line in out.splitlines()[1:]] == [
        "llm-finetune",
        "llm-finetune",
        "vlm-ddp",
    ]


def test_template_uris_and_the_repository():
    ref = parse_template_uri(
        "https://us-central1-kfp.pkg.dev/my-proj/liftoff-pipelines/llm-finetune@reviewed"
    )
    assert (
        ref.uri == "https://us-central1-kfp.pkg.dev/my-proj/liftoff-pipelines/llm-finetune/reviewed"
    )
    pinned = "https://us-central1-kfp.pkg.dev/p/r/vlm-ddp/sha256:" + "ab" * 32
    assert parse_template_uri(pinned).ref == "sha256:" + "ab" * 32  # Artifact Registry's form
    for bad, says in (
        ("https://us-central1-kfp.pkg.dev/p/r/llm-finetune", "name a version"),
        ("https://us-central1-kfp.pkg.dev/p/r/llm-finetune@sha256:abc", "neither a tag nor"),
        ("http://example.com/p/r/llm-finetune@latest", "only for loopback hosts"),
        ("gs://bucket/llm-finetune.yaml", "expected https://REGION-kfp.pkg.dev"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_template_uri(bad)
    flags = {"project": "my-proj", "region": "us-central1", "kfp_host": None, "kfp_repo": None}
    assert template_host(flags, environ={}) == (
        "https://us-central1-kfp.pkg.dev/my-proj/liftoff-pipelines"
    )
    with pytest.raises(ValueError, match="the KFP repository is unknown"):
        template_host({"project": "my-proj"}, environ={})


def test_submit_runs_a_pushed_version_by_tag(capsys, kfp_registry, host, vertex_fake, gcs_emulator):
    golden = GOLDEN / "llm-finetune.yaml"
    assert cli(capsys, "templates", "push", str(golden), "--kfp-host", host, "--tag", "rc1")[0] == 0
    root = f"gs://lf-{uuid.uuid4().hex[:16]}/root"
    code, out, err = cli(
        capsys, "submit", "--template", f"{host}/llm-finetune@rc1",
        "--project", PROJECT, "--region", REGION, "--pipeline-root", root,
        "--service-account", SERVICE_ACCOUNT, "--param", "max_steps=7",
    )  # fmt: skip

    assert (code, err) == (0, "")
    (create,) = [r for r in vertex_fake.requests if r.method == "POST"]
    body = create.body
    # The tag resolved to the version it names now, and the spec is that version's.
    assert body["templateUri"] == f"{host}/llm-finetune/{digest(golden.read_bytes())}"
    assert body["pipelineSpec"]["pipelineInfo"]["name"] == "llm-finetune"
    assert body["runtimeConfig"]["parameterValues"]["max_steps"] == 7  # typed by the template
    job_id = create.query["pipelineJobId"]
    assert body["runtimeConfig"]["parameterValues"]["model_labels"] == {"liftoff_run": job_id}
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert out.startswith(f"submitted projects/{PROJECT}/locations/{REGION}/pipelineJobs/")
    gets = [r.path for r in kfp_registry.requests if r.method == "GET"]
    assert gets == [
        f"/{PROJECT}/liftoff-pipelines/packages/llm-finetune/tags/rc1",
        f"/{PROJECT}/liftoff-pipelines/llm-finetune/{digest(golden.read_bytes())}",
    ]


def test_a_template_with_compile_options_or_a_missing_tag_sends_nothing(
    capsys, kfp_registry, host, vertex_fake
):
    where = ["--project", PROJECT, "--region", REGION, "--pipeline-root", "gs://b/root"]
    code, _, err = cli(
        capsys, "submit", "--template", f"{host}/llm-finetune@latest", "--hardware", "h100x8",
        *where,
    )  # fmt: skip
    assert code == 2
    assert err.startswith("liftoff submit: error: --template: --hardware cannot go with a template")
    assert kfp_registry.requests == []

    code, _, err = cli(capsys, "submit", "--template", f"{host}/llm-finetune@nope", *where)
    assert code == 2
    assert err.startswith(f"liftoff submit: error: template {host}/llm-finetune/nope: not found")
    code, _, err = cli(capsys, "submit", *where)
    assert code == 2 and "name a pipeline (liftoff pipelines) or pass --template URI" in err
    assert vertex_fake.requests == []
