"""Submitting a compiled pipeline, checked on the wire against the loopback Vertex fake.

.venv/bin/python -m pytest -q tests/pipelines/test_submit.py
"""

# No `from __future__ import annotations`: KFP reads the component's annotations as types.
import socket
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import fsspec
import pytest
from kfp import compiler, dsl

from pipelines.preflight import check_labels
from pipelines.settings import SubmitSettings, resolve_settings
from pipelines.submit import (
    build_job,
    dry_run_body,
    dry_run_request,
    init_vertex,
    request_body,
    submit,
)
from tests.support import vertex_fake as vertex_fake_plugin

# The fixture, until tests/conftest.py lists tests.support.vertex_fake in `pytest_plugins`.
vertex_fake = vertex_fake_plugin.vertex_fake

PROJECT, REGION = "proj-1", "europe-west4"
SERVICE_ACCOUNT = "trainer@proj-1.iam.gserviceaccount.com"
PARAMETERS = {"greeting": "hello", "scale": 0.5, "repeats": 3}
LABELS = {"team": "ml", "run_kind": "nightly-1"}


@dsl.component(base_image="python:3.11")
def add(a: float, b: int) -> float:
    return a + b


@dsl.pipeline(name="liftoff-tiny-add")
def tiny_add(greeting: str = "hi", scale: float = 1.5, repeats: int = 2):
    add(a=scale, b=repeats)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("compiled") / "tiny_add.yaml"
    compiler.Compiler().compile(tiny_add, str(path))
    return str(path)


@pytest.fixture
def fresh_root(gcs_emulator: str) -> str:
    # A bucket that does not exist yet: submit() creates it, as on a first run.
    return f"gs://fresh-{uuid.uuid4().hex[:16]}/root"


@pytest.fixture
def settings(vertex_fake, fresh_root: str) -> SubmitSettings:
    return SubmitSettings(
        project=PROJECT,
        region=REGION,
        pipeline_root=fresh_root,
        service_account=SERVICE_ACCOUNT,
        api_endpoint=vertex_fake.url,
    )


def _submit(template: str, settings: SubmitSettings, **kwargs):
    return submit(
        template,
        settings=settings,
        display_name="tiny add",
        parameter_values=PARAMETERS,
        labels=LABELS,
        **kwargs,
    )


def _creates(fake) -> list:
    return [r for r in fake.requests if r.method == "POST" and r.path.endswith("/pipelineJobs")]


def test_submit_sends_the_pipeline_job_and_returns_where_it_runs(template, settings, vertex_fake):
    result = _submit(template, settings)

    (create,) = _creates(vertex_fake)
    assert create.path == f"/v1/projects/{PROJECT}/locations/{REGION}/pipelineJobs"
    job_id = create.query["pipelineJobId"]
    assert job_id.startswith("liftoff-tiny-add-")
    body = create.body
    assert body["displayName"] == "tiny add"
    assert body["pipelineSpec"]["pipelineInfo"]["name"] == "liftoff-tiny-add"
    assert body["runtimeConfig"]["gcsOutputDirectory"] == settings.pipeline_root
    assert body["runtimeConfig"]["parameterValues"] == PARAMETERS
    assert body["serviceAccount"] == SERVICE_ACCOUNT
    assert body["labels"] == LABELS
    assert create.headers["content-type"].startswith("application/json")

    assert result.resource_name == f"projects/{PROJECT}/locations/{REGION}/pipelineJobs/{job_id}"
    assert result.console_url == (
        f"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/{job_id}"
        f"?project={PROJECT}"
    )
    assert result.state is None  # not waited for
    # The SDK made the missing pipeline-root bucket in the emulator, not in real GCS.
    assert fsspec.filesystem("gs").exists(settings.pipeline_root.split("/")[2])


def test_a_given_job_id_names_the_run(template, settings, vertex_fake):
    result = _submit(template, settings, job_id="sft-20260101-000000")

    (create,) = _creates(vertex_fake)
    assert create.query["pipelineJobId"] == "sft-20260101-000000"
    assert result.resource_name.endswith("/pipelineJobs/sft-20260101-000000")
    assert "/runs/sft-20260101-000000?" in result.console_url


def test_enable_caching_reaches_every_task(template, settings, vertex_fake):
    _submit(template, settings, enable_caching=False)

    (create,) = _creates(vertex_fake)
    tasks = create.body["pipelineSpec"]["root"]["dag"]["tasks"]
    assert tasks, "the pipeline has no tasks to check"
    assert all(t["cachingOptions"] == {"enableCache": False} for t in tasks.values())


def test_wait_polls_until_the_run_succeeds(template, settings, vertex_fake):
    vertex_fake.running_polls = 2

    result = _submit(template, settings, wait=True)

    assert result.state == "PIPELINE_STATE_SUCCEEDED"
    gets = [r for r in vertex_fake.requests if r.method == "GET"]
    assert [r.path for r in gets] == [f"/v1/{result.resource_name}"] * 3  # RUNNING ×2, then done


@pytest.mark.parametrize("state", ["PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"])
def test_wait_raises_one_line_when_the_run_does_not_succeed(template, settings, vertex_fake, state):
    vertex_fake.final_state = state
    vertex_fake.error_message = "task add failed:\nexit code 1"

    with pytest.raises(RuntimeError) as raised:
        _submit(template, settings, wait=True)

    message = str(raised.value)
    assert "\n" not in message
    assert f"ended {state}" in message
    assert "/pipelineJobs/liftoff-tiny-add-" in message
    assert "console.cloud.google.com" in message
    if state == "PIPELINE_STATE_FAILED":
        assert "task add failed: exit code 1" in message


def test_dry_run_sends_nothing_and_matches_what_submit_sends(template, settings, vertex_fake):
    init_vertex(settings)  # even pointed at an API, a dry run must not call it
    kwargs = dict(display_name="tiny add", parameter_values=PARAMETERS, labels=LABELS)

    request = dry_run_request(
        template, settings=settings, job_id="tiny-1", experiment="sweep", **kwargs
    )

    assert vertex_fake.requests == []
    assert not fsspec.filesystem("gs").exists(settings.pipeline_root.split("/")[2])
    job = build_job(template, settings=settings, enable_caching=None, job_id="tiny-1", **kwargs)
    assert request_body(job, service_account=SERVICE_ACCOUNT) == request["pipelineJob"]
    assert job._gca_resource.service_account == ""  # request_body left the job as built
    assert vertex_fake.requests == []

    _submit(template, settings, job_id="tiny-1", experiment="sweep")
    (create,) = _creates(vertex_fake)
    assert create.path == f"/v1/{request['parent']}/pipelineJobs"
    assert create.query["pipelineJobId"] == request["pipelineJobId"] == "tiny-1"
    assert create.body == request["pipelineJob"]
    association = request["experiment"]
    (link,) = [r for r in vertex_fake.requests if r.path.endswith(":addContextChildren")]
    assert link.path == f"/v1/{association['context']}:addContextChildren"
    assert link.body == association["addContextChildren"]


def test_dry_run_needs_no_credentials_and_no_network(template, monkeypatch):
    import google.auth

    def refuse(*args, **kwargs):
        raise AssertionError("a dry run opened a connection or looked up credentials")

    monkeypatch.setattr(google.auth, "default", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    real = SubmitSettings(project=PROJECT, region=REGION, pipeline_root="gs://real-bucket/root")

    body = dry_run_body(template, settings=real, display_name="d", parameter_values={}, labels={})

    assert body["runtimeConfig"]["gcsOutputDirectory"] == "gs://real-bucket/root"
    assert "serviceAccount" not in body


def test_experiment_is_created_and_linked_to_the_run(template, settings, vertex_fake):
    result = _submit(template, settings, experiment="sft-sweep")

    store = f"/v1/projects/{PROJECT}/locations/{REGION}/metadataStores/default"
    experiment = f"{store}/contexts/sft-sweep"
    calls = [(r.method, r.path) for r in vertex_fake.requests]
    assert ("GET", experiment) in calls  # 404 first: the SDK then creates it
    created = [r for r in vertex_fake.requests if r.path == f"{store}/contexts"]
    assert [r.query["contextId"] for r in created] == ["sft-sweep"]
    assert created[0].body["schemaTitle"] == "system.Experiment"
    (link,) = [r for r in vertex_fake.requests if r.path == experiment + ":addContextChildren"]
    job_id = result.resource_name.rsplit("/", 1)[1]
    assert link.body["childContexts"] == [f"{store[4:]}/contexts/{job_id}"]
    assert calls.index(("POST", f"{store}/contexts")) < calls.index(
        ("POST", _creates(vertex_fake)[0].path)
    ), "the experiment is checked before the job is created"


@pytest.mark.parametrize(
    ("labels", "named"),
    [
        ({"Team": "ml"}, "'Team'"),
        ({"1team": "ml"}, "'1team'"),
        ({"team": "ML"}, "team='ML'"),
        ({"team": "a" * 64}, "team="),
        ({"team.name": "ml"}, "'team.name'"),
    ],
)
def test_bad_labels_are_named_before_anything_is_sent(
    template, settings, vertex_fake, labels, named
):
    with pytest.raises(ValueError, match="label") as raised:
        submit(template, settings=settings, display_name="d", parameter_values={}, labels=labels)

    assert named in str(raised.value) and "\n" not in str(raised.value)
    assert vertex_fake.requests == []


def test_good_labels_pass():
    check_labels({"a": "", "team_1": "ml-ops", "k" * 63: "v" * 63})


def test_init_vertex_uses_anonymous_rest_only_for_loopback(vertex_fake):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud.aiplatform import initializer

    loopback = SubmitSettings(
        project=PROJECT, region=REGION, pipeline_root="gs://b/r", api_endpoint=vertex_fake.url
    )
    init_vertex(loopback)
    config = initializer.global_config
    assert config.api_endpoint == vertex_fake.url
    assert config._api_transport == "rest"
    assert isinstance(config._credentials, AnonymousCredentials)

    config.__init__()  # what the fixture does at teardown
    regional = f"{REGION}-aiplatform.googleapis.com"
    init_vertex(SubmitSettings(**{**vars(loopback), "api_endpoint": regional}))
    assert config.api_endpoint == regional
    assert config._credentials is None  # left to ADC, resolved on first use
    assert (config.project, config.location) == (PROJECT, REGION)


def test_the_fake_answers_unknown_routes_and_duplicates_like_vertex(vertex_fake):
    def call(method: str, path: str, data: bytes | None = None) -> int:
        request = urllib.request.Request(vertex_fake.url + path, data=data, method=method)
        try:
            with urllib.request.urlopen(request) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    jobs = f"/v1/projects/{PROJECT}/locations/{REGION}/pipelineJobs"
    spec = b'{"pipelineSpec": {"pipelineInfo": {"name": "x"}}}'
    assert call("GET", "/v1/nothing/here") == 404
    assert call("POST", jobs + "?pipelineJobId=j1", spec) == 200
    assert call("POST", jobs + "?pipelineJobId=j1", spec) == 409
    assert call("GET", jobs + "/j2") == 404
    assert [r.path for r in vertex_fake.requests] == ["/v1/nothing/here"] + [jobs] * 2 + [
        jobs + "/j2"
    ]


# --- settings -----------------------------------------------------------------------------

_TOML = """\
[vertex]
project = "toml-project"
region = "us-east1"
pipeline_root = "gs://toml-bucket/root"
service_account = "toml@p.iam.gserviceaccount.com"
api_endpoint = "toml-endpoint.example.com"
"""


def _write_toml(directory: Path, text: str = _TOML) -> Path:
    path = directory / "liftoff.toml"
    path.write_text(text)
    return path


def test_flags_beat_env_beat_liftoff_toml(tmp_path):
    _write_toml(tmp_path)
    env = {"LIFTOFF_REGION": "asia-southeast1", "LIFTOFF_PROJECT": "env-project"}
    flags = {"project": "flag-project", "region": None, "pipeline_root": ""}

    settings = resolve_settings(flags, environ=env, cwd=tmp_path)

    assert settings == SubmitSettings(
        project="flag-project",  # flag over env and toml
        region="asia-southeast1",  # env over toml
        pipeline_root="gs://toml-bucket/root",  # an empty flag counts as not given
        service_account="toml@p.iam.gserviceaccount.com",
        api_endpoint="toml-endpoint.example.com",
    )
    assert settings.sources["project"] == "--project"
    assert settings.sources["region"] == "LIFTOFF_REGION"
    assert settings.sources["pipeline_root"].startswith("pipeline_root in ")


def test_no_liftoff_toml_is_fine(tmp_path):
    env = {
        "LIFTOFF_PROJECT": "p",
        "LIFTOFF_REGION": "us-central1",
        "LIFTOFF_PIPELINE_ROOT": "gs://b",
    }
    settings = resolve_settings({}, environ=env, cwd=tmp_path)
    assert (settings.service_account, settings.api_endpoint) == ("", "")


@pytest.mark.parametrize("missing", ["project", "region", "pipeline_root"])
def test_a_missing_required_option_names_all_its_sources(tmp_path, missing):
    flags = {"project": "p", "region": "us-central1", "pipeline_root": "gs://b/r", missing: None}
    flag, env = "--" + missing.replace("_", "-"), "LIFTOFF_" + missing.upper()

    with pytest.raises(ValueError) as raised:
        resolve_settings(flags, environ={}, cwd=tmp_path)

    assert (
        str(raised.value) == f"{flag} is required (or {env}, or {missing} in liftoff.toml [vertex])"
    )


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("region", "US Central", "like us-central1"),
        ("region", "uscentral1", "like us-central1"),
        ("pipeline_root", "/tmp/root", "gs://"),
        ("pipeline_root", "gs://", "gs://"),
        ("api_endpoint", "http://10.0.0.5:8080", "loopback"),
        ("api_endpoint", "http://aiplatform.googleapis.com", "loopback"),
        ("api_endpoint", "https://us-central1-aiplatform.googleapis.com", "HOST[:PORT]"),
    ],
)
def test_a_bad_value_names_the_option_where_it_came_from_and_what_is_allowed(
    tmp_path, option, value, allowed
):
    base = {"project": "p", "region": "us-central1", "pipeline_root": "gs://b/r"}
    env_name = "LIFTOFF_" + option.upper()

    with pytest.raises(ValueError) as from_env:
        resolve_settings(base | {option: None}, environ={env_name: value}, cwd=tmp_path)
    path = _write_toml(tmp_path, f'[vertex]\n{option} = "{value}"\n')
    with pytest.raises(ValueError) as from_toml:
        resolve_settings(base | {option: None}, environ={}, cwd=tmp_path)

    for raised, source in ((from_env, env_name), (from_toml, f"{option} in {path} [vertex]")):
        message = str(raised.value)
        assert message.startswith(f"{source}: {value!r} is not valid"), message
        assert allowed in message and "\n" not in message


@pytest.mark.parametrize(
    "endpoint", ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:1"]
)
def test_plain_http_is_allowed_on_loopback(tmp_path, endpoint):
    flags = {
        "project": "p",
        "region": "us-central1",
        "pipeline_root": "gs://b",
        "api_endpoint": endpoint,
    }
    assert resolve_settings(flags, environ={}, cwd=tmp_path).is_loopback


def test_a_malformed_liftoff_toml_is_named_with_the_toml_error(tmp_path):
    path = _write_toml(tmp_path, '[vertex]\nproject = "unterminated\n')

    with pytest.raises(ValueError) as raised:
        resolve_settings({}, environ={}, cwd=tmp_path)

    message = str(raised.value)
    assert message.startswith(f"{path}: invalid TOML: ") and "line 2" in message
    assert "\n" not in message


def test_a_non_string_in_liftoff_toml_is_named(tmp_path):
    path = _write_toml(tmp_path, "[vertex]\nproject = 42\n")

    with pytest.raises(ValueError, match=r"\[vertex\] project must be a string, got int") as raised:
        resolve_settings({}, environ={}, cwd=tmp_path)

    assert str(path) in str(raised.value)
