"""The loopback Artifact Registry KFP repository, driven by the real `kfp.registry.RegistryClient`:
uploads, downloads, versions, tags and deletes, as a client of Google's would see them.

    .venv/bin/python -m pytest -q tests/test_kfp_registry_fake.py
"""

import hashlib
import json
from pathlib import Path

import kfp.registry
import pytest
import requests
from kfp.registry import RegistryClient

REPO_NAME = "projects/p/locations/europe-west4/repositories/templates"
TEMPLATE = "# PIPELINE DEFINITION\n# Name: tiny\npipelineInfo:\n  name: tiny\nroot: {}\n"


def _template(tmp_path: Path, text: str = TEMPLATE, name: str = "tiny.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def host(kfp_registry) -> str:
    return kfp_registry.add_repository("p", "templates", location="europe-west4")


def test_upload_is_recorded_and_answers_the_package_and_the_digest(kfp_registry, host, tmp_path):
    path = _template(tmp_path)
    client = RegistryClient(host=host)
    name, version = client.upload_pipeline(
        str(path), tags=["abc123", "latest"], extra_headers={"description": "nightly"}
    )
    assert (name, version) == ("tiny", "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest())
    (upload,) = kfp_registry.requests
    assert (upload.method, upload.path) == ("POST", "/p/templates")
    assert upload.form == {"tags": b"abc123,latest", "content": path.read_bytes()}
    assert upload.headers["description"] == "nightly"
    assert client.get_version("tiny", version)["description"] == "nightly"


def test_versions_and_tags_read_back_and_an_upload_moves_a_tag(host, tmp_path):
    client = RegistryClient(host=host)
    _, first = client.upload_pipeline(str(_template(tmp_path)), tags=["v1", "latest"])
    second_text = TEMPLATE.replace("root: {}", "root: {dag: {}}")
    _, second = client.upload_pipeline(str(_template(tmp_path, second_text)), tags="latest")
    assert first != second
    # The same bytes again are the same version, and add no other.
    assert client.upload_pipeline(str(_template(tmp_path)))[1] == first

    assert [p["name"] for p in client.list_packages()] == [f"{REPO_NAME}/packages/tiny"]
    versions = {v["name"].rsplit("/", 1)[1]: v for v in client.list_versions("tiny")}
    assert set(versions) == {first, second}
    assert [t["name"].rsplit("/", 1)[1] for t in versions[first]["relatedTags"]] == ["v1"]
    assert (
        client.get_tag("tiny", "latest")["version"]
        == f"{REPO_NAME}/packages/tiny/versions/{second}"
    )
    assert sorted(t["name"].rsplit("/", 1)[1] for t in client.list_tags("tiny")) == ["latest", "v1"]

    out = tmp_path / "out.yaml"
    client.download_pipeline("tiny", tag="v1", file_name=str(out))
    assert out.read_text() == TEMPLATE
    client.download_pipeline("tiny", version=second, file_name=str(out))
    assert out.read_text() == second_text


def test_tag_create_update_and_delete_and_version_delete_rules(host, tmp_path):
    client = RegistryClient(host=host)
    _, first = client.upload_pipeline(str(_template(tmp_path)), tags="latest")
    second = client.upload_pipeline(str(_template(tmp_path, TEMPLATE + "# 2\n")))[1]

    with pytest.raises(requests.HTTPError) as exists:
        client.create_tag("tiny", second, "latest")
    assert exists.value.response.status_code == 409
    assert exists.value.response.json()["error"]["status"] == "ALREADY_EXISTS"
    client.create_tag("tiny", second, "candidate")
    client.update_tag("tiny", second, "latest")
    assert client.get_tag("tiny", "latest")["version"].endswith(second)

    with pytest.raises(requests.HTTPError) as tagged:
        client.delete_version("tiny", second)  # two tags still name it
    assert tagged.value.response.status_code == 400
    client.delete_tag("tiny", "candidate")
    client.delete_tag("tiny", "latest")
    assert client.delete_version("tiny", second) is True
    assert [v["name"].rsplit("/", 1)[1] for v in client.list_versions("tiny")] == [first]
    assert client.list_tags("tiny") == {}  # an empty list is an absent field, as in proto3 JSON
    assert client.delete_package("tiny") is True
    with pytest.raises(requests.HTTPError) as gone:
        client.get_package("tiny")
    assert gone.value.response.status_code == 404


def test_google_layout_answers_at_the_api_paths_with_views(kfp_registry, host, tmp_path):
    # Artifact Registry's own client context, with the API host pointed at the fake: the
    # client then sends exactly the paths it sends to artifactregistry.googleapis.com.
    context = Path(kfp.registry.__file__).with_name("context") / "kfp_pkg_dev.json"
    text = context.read_text().replace("https://artifactregistry.googleapis.com", kfp_registry.url)
    config = json.loads(text.replace("{location}", "europe-west4"))
    config["regex"] = r"^http://127\.0\.0\.1:\d+/(?P<project_id>[^/]+)/(?P<repo_id>[^/]+)$"
    (tmp_path / "context.json").write_text(json.dumps(config))
    client = RegistryClient(host=host, config_file=str(tmp_path / "context.json"))

    _, version = client.upload_pipeline(str(_template(tmp_path)), tags="latest")
    (listed,) = client.list_versions("tiny")
    assert kfp_registry.requests[-1].path == f"/v1/{REPO_NAME}/packages/tiny/versions"
    assert kfp_registry.requests[-1].query == {"view": "FULL"}
    assert listed["relatedTags"][0]["name"] == f"{REPO_NAME}/packages/tiny/tags/latest"
    basic = requests.get(f"{kfp_registry.url}/v1/{REPO_NAME}/packages/tiny/versions/{version}")
    assert "relatedTags" not in basic.json()


def test_unknown_repositories_and_bad_uploads_are_refused_like_google(kfp_registry, host, tmp_path):
    unknown = RegistryClient(host=f"{kfp_registry.url}/p/nowhere")
    with pytest.raises(requests.HTTPError) as missing:
        unknown.upload_pipeline(str(_template(tmp_path)))
    error = missing.value.response.json()["error"]
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")

    client = RegistryClient(host=host)
    with pytest.raises(requests.HTTPError) as bad:
        client.upload_pipeline(str(_template(tmp_path, "just: text\n")))
    assert bad.value.response.status_code == 400
    assert client.list_packages() == {}
