"""Where the launch runner's CustomJobs go: the Vertex endpoint and the GCP environment.

    environment = gcp_environment(agent_environment)   # ADC, or anonymous for a loopback fake
    aiplatform.init(..., **init_kwargs())

`LIFTOFF_API_ENDPOINT` (or `api_endpoint` in liftoff.toml [vertex]) points the runner at another
Vertex endpoint: a plain `http://` one only on loopback (a fake, in tests), which then gets the
REST transport and anonymous credentials, so no Google credential is looked up or sent.
`LIFTOFF_PROJECT` picks the project; otherwise it is that of the agent's credentials.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from wandb.sdk.launch.environment.gcp_environment import GCP_REGION_ENV_VAR, GcpEnvironment

from pipelines.settings import LOOPBACK_HOSTS, lookup


def _settings() -> dict[str, str]:
    return lookup(["api_endpoint", "project"], {})[0]


def endpoint() -> str:
    """The configured Vertex endpoint ("" for Google's own); http:// only for loopback."""
    value = _settings().get("api_endpoint", "")
    parts = urlsplit(value)
    if parts.scheme == "http" and parts.hostname not in LOOPBACK_HOSTS:
        raise ValueError(f"LIFTOFF_API_ENDPOINT: {value!r}: http:// is allowed only on loopback")
    return value


def init_kwargs() -> dict:
    """What `aiplatform.init` needs beyond project and region to reach `endpoint()`."""
    value = endpoint()
    if value.startswith("http://"):
        return {"api_endpoint": value, "api_transport": "rest"}
    return {"api_endpoint": value} if value else {}


class LoopbackEnvironment(GcpEnvironment):
    """A GCP environment for a loopback Vertex: anonymous credentials, nothing verified."""

    async def get_credentials(self):
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()

    async def verify(self) -> None:
        pass


def gcp_environment(environment) -> GcpEnvironment:
    """The agent's GCP environment (its region is the fallback for a queue without one)."""
    region = getattr(environment, "region", "") or os.environ.get(GCP_REGION_ENV_VAR, "")
    if endpoint().startswith("http://"):
        chosen: GcpEnvironment = LoopbackEnvironment(region=region)
    elif isinstance(environment, GcpEnvironment):
        chosen = environment
    else:
        chosen = GcpEnvironment(region=region)
    # GcpEnvironment keeps the credentials' project only when none is set.
    chosen._project = _settings().get("project", "") or chosen._project
    return chosen
