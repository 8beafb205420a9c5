"""Read Secret Manager secrets with the environment's default credentials.

    from trainers.common.secrets import read_secret
    api_key = read_secret("projects/my-project/secrets/wandb-api-key/versions/latest")
    export_secret("projects/my-project/secrets/hf-token/versions/1", variable=HF_TOKEN_ENV)

Inside a Vertex job the credentials are the job's service account; it needs
`roles/secretmanager.secretAccessor` on the secret. Set `LIFTOFF_SECRET_MANAGER_ENDPOINT`
to talk to another endpoint: an `http://` URL (a loopback fake in tests) is used over REST
with anonymous credentials, anything else (a private or regional endpoint) with the default
ones. Secret values are returned, never printed or logged.
"""

from __future__ import annotations

import os
import re

from trainers.common.config import ConfigError

ENDPOINT_ENV = "LIFTOFF_SECRET_MANAGER_ENDPOINT"
RESOURCE_FORM = "projects/PROJECT/secrets/NAME/versions/VERSION"
_RESOURCE = re.compile(r"projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+")
HF_TOKEN_ENV = "HF_TOKEN"  # where huggingface_hub looks for a token (gated models)
# The serving container's setting: a secret version name, never the token itself.
HF_SECRET_ENV = "LIFTOFF_HF_SECRET"


def check_secret_name(resource: str, *, what: str = "secret") -> None:
    """Raise a one-line ConfigError unless `resource` names a secret version. The value is
    not shown: what was passed by mistake may be the key itself."""
    if not isinstance(resource, str) or not _RESOURCE.fullmatch(resource):
        raise ConfigError(
            f"{what}: not a Secret Manager version name, expected {RESOURCE_FORM}: the name "
            "of the secret that holds the key, never the key itself (the value given is not "
            "shown)"
        )


def export_secret(resource: str, *, variable: str) -> None:
    """Read the secret version `resource` into this process's environment as `variable`, where
    libraries and child processes find it; nothing when `resource` is empty."""
    if resource:
        # Secrets are often stored with a trailing newline, which no token has.
        os.environ[variable] = read_secret(resource).strip()


def read_secret(resource: str) -> str:
    """The UTF-8 payload of the secret version `resource` (projects/P/secrets/N/versions/V)."""
    check_secret_name(resource)
    from google.api_core import exceptions

    try:
        response = _client().access_secret_version(name=resource)
    except (exceptions.NotFound, exceptions.PermissionDenied) as err:
        # The name or its access is the user's to fix: one line, no traceback.
        raise ConfigError(f"cannot read secret {resource}: {_first_line(err.message)}") from None
    except exceptions.GoogleAPICallError as err:
        raise RuntimeError(f"cannot read secret {resource}: {err.message}") from err
    data = response.payload.data
    _check_crc32c(resource, data, response.payload)
    return data.decode("utf-8")


def _client():
    from google.cloud import secretmanager

    endpoint = os.environ.get(ENDPOINT_ENV)
    if not endpoint:
        return secretmanager.SecretManagerServiceClient()
    if endpoint.startswith("http://"):
        # Plain HTTP only ever points at a fake or a sidecar: gRPC would need TLS and real
        # credentials would be refused (or worse, sent in clear text).
        from google.auth.credentials import AnonymousCredentials

        return secretmanager.SecretManagerServiceClient(
            transport="rest",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": endpoint},
        )
    return secretmanager.SecretManagerServiceClient(client_options={"api_endpoint": endpoint})


def _check_crc32c(resource: str, data: bytes, payload) -> None:
    """Google's documented integrity check; the client library leaves it to the caller."""
    if "data_crc32c" not in payload:
        return
    import google_crc32c

    if google_crc32c.value(data) != payload.data_crc32c:
        raise RuntimeError(f"cannot read secret {resource}: payload failed its CRC32C check")


def _first_line(text: str) -> str:
    return (str(text).strip().splitlines() or [""])[0]
