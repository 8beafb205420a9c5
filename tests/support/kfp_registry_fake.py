"""A loopback Artifact Registry KFP repository: what `kfp.registry.RegistryClient` sends, answered
as Artifact Registry answers it, with every request recorded.

    def test_x(kfp_registry):
        host = kfp_registry.add_repository("p", "liftoff-pipelines")  # http://127.0.0.1:PORT/p/...
        client = RegistryClient(host=host)
        name, version = client.upload_pipeline("llm-finetune.yaml", tags=["abc123", "latest"])
        assert kfp_registry.requests[0].form["tags"] == b"abc123,latest"
        assert client.get_tag(name, "latest")["version"].endswith(version)

It serves, for each repository added:
- the template host (`https://REGION-kfp.pkg.dev/PROJECT/REPO` on Google, `{url}/PROJECT/REPO`
  here): the multipart upload (file `content`, form field `tags`, comma-separated; a
  `description` header), answered `PACKAGE/sha256:HEX`, and downloads by version or tag;
- the Artifact Registry API for packages, versions and tags, both where a client with a loopback
  host sends it (KFP's default context: `{host}/packages/...`) and where it goes on Google
  (`{url}/v1/projects/P/locations/L/repositories/R/packages/...`).

As on Artifact Registry: the package is the template's `pipelineInfo.name`; a version is the
sha256 of the uploaded bytes, so an identical upload is the same version; a tag names one
version and an upload moves it; creating a tag that exists is 409; a tagged version is deleted
only with `force=true`; deletes answer a finished Operation; empty lists are `{}` (proto3 JSON
drops empty fields); `relatedTags` come with `view=FULL` (what Google's client context asks) and
always on the loopback layout, so a loopback client sees what a client of Google sees. Unknown
repositories, packages, versions and tags get Google's 404 JSON. Paging and IAM are not modelled.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import yaml

from tests.support.loopback import Incoming, JSONHandler, LoopbackFake, LoopbackServer

_API = r"/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/repositories/(?P<repo>[^/]+)"
_HOST = r"/(?P<project>[^/]+)/(?P<repo>[^/]+)"
_PACKAGE = r"/packages/(?P<package>[^/]+)"
_REF = r"(?P<ref>[^/]+)"
# (method, path below a repository, action); the same for both layouts.
_RESOURCES = [
    ("GET", r"/packages", "list_packages"),
    ("GET", _PACKAGE, "get_package"),
    ("DELETE", _PACKAGE, "delete_package"),
    ("GET", _PACKAGE + r"/versions", "list_versions"),
    ("GET", _PACKAGE + r"/versions/" + _REF, "get_version"),
    ("DELETE", _PACKAGE + r"/versions/" + _REF, "delete_version"),
    ("GET", _PACKAGE + r"/tags", "list_tags"),
    ("POST", _PACKAGE + r"/tags", "create_tag"),
    ("GET", _PACKAGE + r"/tags/" + _REF, "get_tag"),
    ("PATCH", _PACKAGE + r"/tags/" + _REF, "update_tag"),
    ("DELETE", _PACKAGE + r"/tags/" + _REF, "delete_tag"),
]
_ROUTES: list[tuple[str, re.Pattern, str]] = [
    *[(m, re.compile(_API + path), action) for m, path, action in _RESOURCES],
    *[(m, re.compile(_HOST + path), action) for m, path, action in _RESOURCES],
    ("POST", re.compile(_HOST), "upload"),
    ("GET", re.compile(_HOST + r"/(?P<package>[^/]+)/" + _REF), "download"),
]
_VERSION_REF = re.compile(r"(?:.*/)?packages/(?P<package>[^/]+)/versions/(?P<version>sha256:\w+)")


@dataclass(frozen=True)
class Request(Incoming):
    form: dict[str, bytes]  # the parts of a multipart body by name (an upload: content, tags)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "application/json"

    @classmethod
    def json(cls, body: dict, status: int = 200) -> Answer:
        return cls(status, json.dumps(body).encode())


class _Error(Exception):
    def __init__(self, code: int, status: str, message: str) -> None:
        super().__init__(message)
        body = {"error": {"code": code, "message": message, "status": status}}
        self.answer = Answer.json(body, status=code)


@dataclass
class _Version:
    content: bytes
    description: str
    created: str


@dataclass
class _Package:
    created: str
    updated: str
    versions: dict[str, _Version] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # tag -> version


@dataclass
class _Repository:
    project: str
    location: str
    repo: str
    packages: dict[str, _Package] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"projects/{self.project}/locations/{self.location}/repositories/{self.repo}"


class KfpRegistryFake(LoopbackFake):
    """Serves the KFP repositories given to `add_repository` on 127.0.0.1 until `close`."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.repositories: dict[tuple[str, str], _Repository] = {}
        self._lock = threading.Lock()
        self._http = LoopbackServer(_handler_for(self))

    def add_repository(self, project: str, repo: str, *, location: str = "us-central1") -> str:
        """Create an empty KFP repository; returns its template host for `RegistryClient`."""
        self.repositories[(project, repo)] = _Repository(project, location, repo)
        return f"{self.url}/{project}/{repo}"

    def handle(self, request: Request) -> Answer:
        """Record `request`; return the answer."""
        with self._lock:  # handlers run on one thread per connection
            self.requests.append(request)
            for method, pattern, action in _ROUTES:
                match = pattern.fullmatch(request.path)
                if match and method == request.method:
                    where = match.groupdict()
                    try:
                        repository = self._repository(
                            where.pop("project"), where.pop("repo"), where.pop("location", None)
                        )
                        return getattr(self, action)(request, repository, **where)
                    except _Error as e:
                        return e.answer
            return _Error(404, "NOT_FOUND", f"no route: {request.method} {request.path}").answer

    # --- the template host ------------------------------------------------------------------

    def upload(self, request: Request, repository: _Repository) -> Answer:
        content = request.form.get("content")
        if content is None:
            raise _Error(400, "INVALID_ARGUMENT", "the upload has no `content` file part")
        name = _pipeline_name(content)
        version = "sha256:" + hashlib.sha256(content).hexdigest()
        now = _now()
        package = repository.packages.setdefault(name, _Package(created=now, updated=now))
        description = request.headers.get("description", "")
        package.versions.setdefault(version, _Version(content, description, created=now))
        package.updated = now
        for tag in _tags(request.form.get("tags", b"")):
            package.tags[tag] = version  # an upload moves a tag that names another version
        return Answer(200, f"{name}/{version}".encode(), "text/plain")

    def download(self, request: Request, repository: _Repository, *, package: str, ref: str):
        found = _find(repository.packages, package, "Package")
        version = ref if ref.startswith("sha256:") else _find(found.tags, ref, "Tag")
        content = _find(found.versions, version, "Version").content
        return Answer(200, content, "application/x-yaml")

    # --- the Artifact Registry API ----------------------------------------------------------

    def list_packages(self, request: Request, repository: _Repository) -> Answer:
        packages = [_package_json(repository, name) for name in sorted(repository.packages)]
        return Answer.json({"packages": packages} if packages else {})

    def get_package(self, request: Request, repository: _Repository, *, package: str):
        _find(repository.packages, package, "Package")
        return Answer.json(_package_json(repository, package))

    def delete_package(self, request: Request, repository: _Repository, *, package: str):
        _find(repository.packages, package, "Package")
        del repository.packages[package]
        return _done(repository)

    def list_versions(self, request: Request, repository: _Repository, *, package: str):
        found = _find(repository.packages, package, "Package")
        full = _full_view(request)
        versions = [_version_json(repository, package, v, full=full) for v in found.versions]
        return Answer.json({"versions": versions} if versions else {})

    def get_version(self, request: Request, repository: _Repository, *, package: str, ref: str):
        _find(_find(repository.packages, package, "Package").versions, ref, "Version")
        return Answer.json(_version_json(repository, package, ref, full=_full_view(request)))

    def delete_version(self, request: Request, repository: _Repository, *, package: str, ref: str):
        found = _find(repository.packages, package, "Package")
        _find(found.versions, ref, "Version")
        tagged = sorted(t for t, v in found.tags.items() if v == ref)
        if tagged and request.query.get("force") != "true":
            message = f"Version {ref} has tags {tagged}: delete it with force=true"
            raise _Error(400, "FAILED_PRECONDITION", message)
        del found.versions[ref]
        found.tags = {t: v for t, v in found.tags.items() if v != ref}
        return _done(repository)

    def list_tags(self, request: Request, repository: _Repository, *, package: str):
        found = _find(repository.packages, package, "Package")
        tags = [_tag_json(repository, package, tag) for tag in found.tags]
        return Answer.json({"tags": tags} if tags else {})

    def create_tag(self, request: Request, repository: _Repository, *, package: str):
        found = _find(repository.packages, package, "Package")
        tag = request.query.get("tagId", "")
        _check_tag(tag)
        if tag in found.tags:
            raise _Error(409, "ALREADY_EXISTS", f"Tag {tag} already exists in {package}")
        found.tags[tag] = _tag_target(found, package, request)
        return Answer.json(_tag_json(repository, package, tag))

    def get_tag(self, request: Request, repository: _Repository, *, package: str, ref: str):
        _find(_find(repository.packages, package, "Package").tags, ref, "Tag")
        return Answer.json(_tag_json(repository, package, ref))

    def update_tag(self, request: Request, repository: _Repository, *, package: str, ref: str):
        found = _find(repository.packages, package, "Package")
        _find(found.tags, ref, "Tag")
        found.tags[ref] = _tag_target(found, package, request)
        return Answer.json(_tag_json(repository, package, ref))

    def delete_tag(self, request: Request, repository: _Repository, *, package: str, ref: str):
        found = _find(repository.packages, package, "Package")
        _find(found.tags, ref, "Tag")
        del found.tags[ref]
        return Answer.json({})

    def _repository(self, project: str, repo: str, location: str | None) -> _Repository:
        repository = self.repositories.get((project, repo))
        if repository is None or location not in (None, repository.location):
            where = f"projects/{project}/locations/{location or '-'}/repositories/{repo}"
            raise _Error(404, "NOT_FOUND", f"Repository {where} not found")
        return repository


def _find(resources: dict, key: str, kind: str):
    if key not in resources:
        raise _Error(404, "NOT_FOUND", f"{kind} {key} not found")
    return resources[key]


def _tag_target(found: _Package, package: str, request: Request) -> str:
    """The version a tag's create or update body names (relative or full), checked to exist."""
    body = json.loads(request.body or b"{}")
    match = _VERSION_REF.fullmatch(body.get("version", ""))
    if not match or match["package"] != package:
        raise _Error(400, "INVALID_ARGUMENT", f"bad tag version {body.get('version')!r}")
    _find(found.versions, match["version"], "Version")
    return match["version"]


def _package_json(repository: _Repository, package: str) -> dict:
    found = repository.packages[package]
    name = f"{repository.name}/packages/{package}"
    return {"name": name, "createTime": found.created, "updateTime": found.updated}


def _version_json(repository: _Repository, package: str, version: str, *, full: bool) -> dict:
    found = repository.packages[package]
    record = found.versions[version]
    body = {
        "name": f"{repository.name}/packages/{package}/versions/{version}",
        "createTime": record.created,
        "updateTime": record.created,
    }
    if record.description:
        body["description"] = record.description
    tagged = [tag for tag, v in found.tags.items() if v == version]
    if full and tagged:
        body["relatedTags"] = [_tag_json(repository, package, tag) for tag in tagged]
    return body


def _tag_json(repository: _Repository, package: str, tag: str) -> dict:
    prefix = f"{repository.name}/packages/{package}"
    version = repository.packages[package].tags[tag]
    return {"name": f"{prefix}/tags/{tag}", "version": f"{prefix}/versions/{version}"}


def _done(repository: _Repository) -> Answer:
    operations = f"projects/{repository.project}/locations/{repository.location}/operations"
    empty = {"@type": "type.googleapis.com/google.protobuf.Empty"}
    return Answer.json({"name": f"{operations}/{uuid.uuid4()}", "done": True, "response": empty})


def _pipeline_name(content: bytes) -> str:
    try:
        spec = next(yaml.safe_load_all(content), None)
        name = spec["pipelineInfo"]["name"]
    except (yaml.YAMLError, TypeError, KeyError, StopIteration):
        raise _Error(400, "INVALID_ARGUMENT", "not a KFP pipeline template") from None
    return name


def _tags(raw: bytes) -> list[str]:
    tags = [t.strip() for t in raw.decode().split(",") if t.strip()]
    for tag in tags:
        _check_tag(tag)
    return tags


def _check_tag(tag: str) -> None:
    if not tag or tag.startswith("sha256:") or "/" in tag:
        raise _Error(400, "INVALID_ARGUMENT", f"invalid tag {tag!r}")


def _full_view(request: Request) -> bool:
    # The loopback layout has no views: it answers what Google's context (view=FULL) gets.
    return not request.path.startswith("/v1/") or request.query.get("view") == "FULL"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by their `name`."""
    if not content_type.startswith("multipart/form-data"):
        return {}
    header = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    parts = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        parts[name] = part.get_payload(decode=True) or b""
    return parts


def _handler_for(fake: KfpRegistryFake) -> type[JSONHandler]:
    class Handler(JSONHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            incoming = self.incoming()
            form = _multipart(incoming.headers.get("content-type", ""), incoming.body)
            answer = fake.handle(Request(**vars(incoming), form=form))
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_POST = do_PATCH = do_DELETE = do_GET

    return Handler


@pytest.fixture
def kfp_registry() -> Iterator[KfpRegistryFake]:
    """A fresh fake per test; add repositories with `add_repository`."""
    fake = KfpRegistryFake()
    try:
        yield fake
    finally:
        fake.close()
