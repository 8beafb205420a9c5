"""The Vertex AI custom-container contract, in one place: the port, the routes and the model
location the platform passes through the environment, and the container spec that declares them.

    from serving import contract
    contract.port(), contract.health_route(), contract.predict_route()   # from os.environ
    contract.container_spec("REGION-docker.pkg.dev/P/liftoff/serving@sha256:...")

The server (`serving.server`), the local runner (`serving.local`) and the register step
(`components/register/vertex.py`) all read it, so what Vertex is told and what the container
does cannot drift apart. Standard library only: the pipeline compiler imports it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# What Vertex AI sets in a prediction container (and the local runner sets for its child).
PORT_ENV = "AIP_HTTP_PORT"
HEALTH_ROUTE_ENV = "AIP_HEALTH_ROUTE"
PREDICT_ROUTE_ENV = "AIP_PREDICT_ROUTE"
STORAGE_URI_ENV = "AIP_STORAGE_URI"

DEFAULT_PORT = 8080
DEFAULT_HEALTH_ROUTE = "/health"
DEFAULT_PREDICT_ROUTE = "/predict"


def port(env: Mapping[str, str] = os.environ) -> str:
    """The port to listen on, as the environment spells it (the CLI parses and checks it)."""
    return env.get(PORT_ENV) or str(DEFAULT_PORT)


def health_route(env: Mapping[str, str] = os.environ) -> str:
    return env.get(HEALTH_ROUTE_ENV) or DEFAULT_HEALTH_ROUTE


def predict_route(env: Mapping[str, str] = os.environ) -> str:
    return env.get(PREDICT_ROUTE_ENV) or DEFAULT_PREDICT_ROUTE


def model_uri(env: Mapping[str, str] = os.environ) -> str:
    return env.get(STORAGE_URI_ENV, "")


def container_spec(image_uri: str) -> dict:
    """The `containerSpec` of a Vertex Model served by the liftoff serving image. Vertex then
    sets AIP_HTTP_PORT, AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE to these values."""
    return {
        "imageUri": image_uri,
        "healthRoute": DEFAULT_HEALTH_ROUTE,
        "predictRoute": DEFAULT_PREDICT_ROUTE,
        "ports": [{"containerPort": DEFAULT_PORT}],
    }
