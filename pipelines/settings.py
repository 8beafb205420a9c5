"""Where a pipeline run goes: the Vertex project, region, pipeline root and identity.

    settings = resolve_settings({"project": args.project, "region": args.region, ...})
    submit("pipeline.yaml", settings=settings, ...)

Each option is looked up in this order, first hit wins: the command-line flag, the
`LIFTOFF_*` environment variable, then the `[vertex]` table of `liftoff.toml` in the working
directory:

    [vertex]
    project = "my-project"
    region = "us-central1"
    pipeline_root = "gs://my-bucket/pipeline-root"
    service_account = "trainer@my-project.iam.gserviceaccount.com"

`lookup` resolves any other such option the same way (compile's `project` and `region`, and
`image_repo`/`image_version`, which name the images: pipelines/images.py). Any other key of
liftoff.toml (a typo, or a key outside `[vertex]`) is refused with one line naming it and the
keys there are (`KEYS`): a setting silently ignored would send a run somewhere else.

`api_endpoint` exists for emulators and tests; plain `http://` is accepted only for loopback
hosts, so a typo cannot send a job (or its credentials) over an unencrypted link.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from trainers.common.config import suggest

CONFIG_FILE = "liftoff.toml"
CONFIG_TABLE = "vertex"
ENV_PREFIX = "LIFTOFF_"
REQUIRED = ("project", "region", "pipeline_root")
# Every option `lookup` resolves, so every key a [vertex] table may hold; any other key is a
# typo, refused with one line rather than silently ignored.
KEYS = (
    *("project", "region", "pipeline_root", "service_account", "api_endpoint"),
    *("image_repo", "image_version", "kfp_host", "kfp_repo", "logging_endpoint"),
)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# Vertex regions are `<area>-<direction><n>`: us-central1, europe-west4, asia-southeast1.
_REGION = re.compile(r"[a-z]+-[a-z]+[0-9]+")


@dataclass(kw_only=True)
class SubmitSettings:
    """A validated destination for `pipelines.submit`; `sources` says where each value came from."""

    project: str
    region: str
    pipeline_root: str
    service_account: str = ""
    api_endpoint: str = ""
    sources: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in REQUIRED:
            if not getattr(self, name):
                raise ValueError(f"{_flag(name)} is required (or {_alternatives(name)})")
        check_region(self.region, source=self.sources.get("region", _flag("region")))
        if not self.pipeline_root.startswith("gs://") or len(self.pipeline_root) <= len("gs://"):
            self._reject("pipeline_root", "expected a gs://BUCKET/PATH URI")
        if self.api_endpoint:
            source = self.sources.get("api_endpoint", _flag("api_endpoint"))
            check_endpoint(self.api_endpoint, source=source)

    def _reject(self, name: str, allowed: str) -> None:
        value = getattr(self, name)
        source = self.sources.get(name, _flag(name))
        raise ValueError(f"{source}: {value!r} is not valid: {allowed}")

    @property
    def is_loopback(self) -> bool:
        """True when the API endpoint is a local emulator (plain http on this machine)."""
        return self.api_endpoint.startswith("http://")


def resolve_settings(
    flags: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] = os.environ,
    cwd: str | os.PathLike = ".",
) -> SubmitSettings:
    """Merge flags > `LIFTOFF_*` env > `liftoff.toml [vertex]` and validate the result.

    `flags` maps option names (`project`, `region`, ...) to the parsed flag value, with None
    (or "") meaning the flag was not given; unknown names are a programming error.
    """
    names = [f.name for f in fields(SubmitSettings) if f.name != "sources"]
    unknown = set(flags) - set(names)
    assert not unknown, f"unknown settings: {sorted(unknown)}"
    values, sources = lookup(names, flags, environ=environ, cwd=cwd)
    # Missing required ones as "", so they get __post_init__'s message.
    return SubmitSettings(**{**dict.fromkeys(REQUIRED, ""), **values}, sources=sources)


def lookup(
    names: list[str],
    flags: Mapping[str, str | None],
    *,
    environ: Mapping[str, str] = os.environ,
    cwd: str | os.PathLike = ".",
) -> tuple[dict[str, str], dict[str, str]]:
    """The values of the options `names` that are set anywhere (flag > `LIFTOFF_<NAME>` >
    `liftoff.toml [vertex]`), and where each came from."""
    assert set(names) <= set(KEYS), f"add {sorted(set(names) - set(KEYS))} to KEYS"
    config_path = Path(cwd) / CONFIG_FILE
    config = _read_config(config_path)
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    for name in names:
        for source, value in (
            (_flag(name), flags.get(name)),
            (_env(name), environ.get(_env(name))),
            (f"{name} in {config_path} [{CONFIG_TABLE}]", config.get(name)),
        ):
            if value:
                values[name], sources[name] = value, source
                break
    return values, sources


def check_region(region: str, *, source: str) -> None:
    if not _REGION.fullmatch(region):
        raise ValueError(
            f"{source}: {region!r} is not valid: expected a Vertex AI region like us-central1"
        )


def _read_config(path: Path) -> dict[str, str]:
    """The `[vertex]` table of `path` as strings, or {} when the file does not exist."""
    try:
        with path.open("rb") as f:
            document = tomllib.load(f)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: invalid TOML: {e}") from None
    for key in document:
        if key != CONFIG_TABLE:
            raise ValueError(
                f"{path}: unknown key {key!r}{suggest(key, [CONFIG_TABLE])}: options go in "
                f"the [{CONFIG_TABLE}] table ({', '.join(KEYS)})"
            )
    table = document.get(CONFIG_TABLE, {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [{CONFIG_TABLE}] must be a table, got {type(table).__name__}")
    for key, value in table.items():
        if key not in KEYS:
            raise ValueError(
                f"{path}: [{CONFIG_TABLE}] unknown key {key!r}{suggest(key, KEYS)} "
                f"(allowed: {', '.join(KEYS)})"
            )
        if not isinstance(value, str):
            raise ValueError(
                f"{path}: [{CONFIG_TABLE}] {key} must be a string, got {type(value).__name__}"
            )
    return table


def check_endpoint(endpoint: str, *, source: str) -> None:
    """`endpoint`: a bare HOST[:PORT] (https), or http:// on a loopback host (an emulator)."""
    parts = urlsplit(endpoint)
    allowed = ""
    if parts.scheme == "http":
        if parts.hostname not in LOOPBACK_HOSTS:
            allowed = f"http:// is allowed only for loopback hosts ({', '.join(LOOPBACK_HOSTS)})"
    elif parts.scheme or "/" in endpoint:
        # The SDK takes a bare host (us-central1-aiplatform.googleapis.com) and adds https.
        allowed = "expected HOST[:PORT] or http://LOOPBACK:PORT"
    if allowed:
        raise ValueError(f"{source}: {endpoint!r} is not valid: {allowed}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _alternatives(name: str) -> str:
    return f"{_env(name)}, or {name} in {CONFIG_FILE} [{CONFIG_TABLE}]"
