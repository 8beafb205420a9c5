"""Pipeline templates in an Artifact Registry KFP repository: push them, list them, and fetch
the pinned version that `submit --template` and `schedule create --template` run.

    host = template_host({"project": "p", "region": "us-central1"})  # .../p/liftoff-pipelines
    pushed = push_template("llm-finetune.yaml", host=host, tags=default_tags(["rc1"]))
    pushed.uri     # https://us-central1-kfp.pkg.dev/p/liftoff-pipelines/llm-finetune/sha256:...
    rows = list_templates(host, pipeline="llm-finetune")     # versions, newest first, with tags
    ref = parse_template_uri("https://us-central1-kfp.pkg.dev/p/r/llm-finetune@latest")
    path, pinned = fetch_template(ref, directory=tmp)          # the tag resolved to its digest

A template URI names a version (`NAME@sha256:…`) or a tag (`NAME@TAG`; Artifact Registry's own
form `NAME/TAG` too). A tag is resolved when the run or schedule is made, and the run records
the digest: a schedule keeps the spec it was created with, so its URI must name those bytes.
The repository comes from `--kfp-host`, or `https://REGION-kfp.pkg.dev/PROJECT/REPO` with REPO
`liftoff-pipelines` unless `--kfp-repo` (each also LIFTOFF_KFP_HOST / LIFTOFF_KFP_REPO or
liftoff.toml [vertex]); plain http:// only on a loopback host (tests).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipelines.settings import LOOPBACK_HOSTS, lookup

DEFAULT_KFP_REPO = "liftoff-pipelines"
LATEST = "latest"
_HOST = re.compile(r"https://[a-z0-9-]+-kfp\.pkg\.dev/[^/]+/[^/]+|http://[^/]+/[^/]+/[^/]+")
_VERSION = re.compile(r"sha256:[0-9a-f]{64}")
_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_URI = re.compile(rf"(?P<host>{_HOST.pattern})/(?P<name>[a-z0-9][a-z0-9-]*)(?:[@/](?P<ref>.+))?")


@dataclass(frozen=True)
class TemplateRef:
    host: str  # the repository: https://REGION-kfp.pkg.dev/PROJECT/REPO
    name: str  # the package: the pipeline's name
    ref: str  # a tag, or a version (sha256:...)

    @property
    def uri(self) -> str:
        """Artifact Registry's own URI of it, as Vertex reads `templateUri`."""
        return f"{self.host}/{self.name}/{self.ref}"


@dataclass(frozen=True)
class Pushed:
    ref: TemplateRef  # by version
    tags: tuple[str, ...]

    @property
    def uri(self) -> str:
        return self.ref.uri


def template_host(flags: Mapping[str, str | None], *, environ=os.environ, cwd=".") -> str:
    """The KFP repository's URL from `--kfp-host`, or from project, region and `--kfp-repo`."""
    names = ["kfp_host", "project", "region", "kfp_repo"]
    found, sources = lookup(names, flags, environ=environ, cwd=cwd)
    if "kfp_host" in found:
        _check_host(found["kfp_host"], what=sources["kfp_host"])
        return found["kfp_host"].rstrip("/")
    if "project" not in found or "region" not in found:
        raise ValueError(
            "the KFP repository is unknown: pass --kfp-host, or --project and --region "
            "(LIFTOFF_PROJECT, LIFTOFF_REGION, liftoff.toml [vertex])"
        )
    repo = found.get("kfp_repo", DEFAULT_KFP_REPO)
    return f"https://{found['region']}-kfp.pkg.dev/{found['project']}/{repo}"


def parse_template_uri(text: str, *, what: str = "--template") -> TemplateRef:
    found = _URI.fullmatch(text.strip())
    if not found:
        raise ValueError(
            f"{what} {text!r}: expected https://REGION-kfp.pkg.dev/PROJECT/REPO/NAME@TAG "
            "or NAME@sha256:DIGEST"
        )
    _check_host(found["host"], what=what)
    ref = found["ref"]
    if not ref:
        raise ValueError(f"{what} {text!r}: name a version, NAME@TAG or NAME@sha256:DIGEST")
    if not (_VERSION.fullmatch(ref) or _TAG.fullmatch(ref)):
        raise ValueError(f"{what} {text!r}: {ref!r} is neither a tag nor sha256:<64 hex digits>")
    return TemplateRef(found["host"], found["name"], ref)


def _check_host(host: str, *, what: str) -> None:
    parts = urlsplit(host)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"{what}: {host!r}: http:// is allowed only for loopback hosts")
    if not _HOST.fullmatch(host.rstrip("/")):
        raise ValueError(f"{what}: {host!r} is not https://REGION-kfp.pkg.dev/PROJECT/REPO")


def default_tags(extra: list[str], *, environ=os.environ) -> list[str]:
    """This commit's short sha (when known), `latest`, then `extra`, each once and checked."""
    from pipelines.images import SHORT_SHA, commit_sha

    sha = commit_sha(environ)[:SHORT_SHA]
    tags = list(dict.fromkeys([*([sha] if sha else []), LATEST, *extra]))
    for tag in tags:
        if not _TAG.fullmatch(tag):
            raise ValueError(f"--tag {tag!r}: letters, digits, '.', '_' and '-', 1 to 128")
    return tags


def push_template(path: str, *, host: str, tags: list[str]) -> Pushed:
    """Upload the compiled template at `path`; an identical upload is the same version, and
    its tags move to it."""
    client = _registry(host)
    name, version = _registry_call(client.upload_pipeline, what=host, file_name=path, tags=tags)
    return Pushed(TemplateRef(host, name, version), tuple(tags))


def list_templates(host: str, *, pipeline: str | None = None) -> list[dict]:
    """[{"pipeline", "version", "created", "tags"}], newest first within each pipeline."""
    client = _registry(host)
    if pipeline:
        names = [pipeline]
    else:
        packages = _registry_call(client.list_packages, what=host)
        names = sorted(p["name"].rsplit("/", 1)[-1] for p in packages)
    rows = []
    for name in names:
        versions = _registry_call(client.list_versions, what=f"{host}/{name}", package_name=name)
        for version in sorted(versions, key=lambda v: v["createTime"], reverse=True):
            tags = [t["name"].rsplit("/", 1)[-1] for t in version.get("relatedTags", [])]
            rows.append(
                {
                    "pipeline": name,
                    "version": version["name"].rsplit("/", 1)[-1],
                    "created": version["createTime"],
                    "tags": sorted(tags),
                }
            )
    return rows


def fetch_template(ref: TemplateRef, *, directory: str) -> tuple[str, TemplateRef]:
    """Download the template `ref` names into `directory`; returns the file and the ref by
    version (a tag resolved to the digest it names now)."""
    client = _registry(ref.host)
    version = ref.ref
    if not _VERSION.fullmatch(version):
        tag = _registry_call(
            client.get_tag, what=f"template {ref.uri}", package_name=ref.name, tag=ref.ref
        )
        version = tag["version"].rsplit("/", 1)[-1]
    path = os.path.join(directory, f"{ref.name}.yaml")
    _registry_call(
        client.download_pipeline,
        what=f"template {ref.uri}",
        package_name=ref.name,
        version=version,
        file_name=path,
    )
    return path, TemplateRef(ref.host, ref.name, version)


def _registry(host: str):
    from kfp.registry import RegistryClient

    return RegistryClient(host=host)


def _registry_call(method, *, what: str, **kwargs):
    """A 404 is the user's (a name or tag that is not there); other failures one line."""
    import requests

    try:
        return method(**kwargs)
    except requests.HTTPError as err:
        status = err.response.status_code if err.response is not None else 0
        message = _error_message(err)
        if status == 404:
            raise ValueError(f"{what}: not found ({message})") from None
        raise RuntimeError(f"{what}: Artifact Registry answered {status}: {message}") from None
    except requests.RequestException as err:
        raise RuntimeError(f"{what}: {' '.join(str(err).split())}") from None


def _error_message(err) -> str:
    try:
        return err.response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError, AttributeError):
        return " ".join(str(err).split())
