"""Serve a trained model over HTTP, as Vertex AI runs a custom prediction container.

    python -m serving --model outputs/demo/model --port 8080
    curl -s localhost:8080/predict -d '{"instances": ["What is 2 + 3?"]}'

On Vertex AI the platform sets AIP_STORAGE_URI (the model's gs:// directory), AIP_HTTP_PORT,
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE; with no flags the server follows them. It listens on
127.0.0.1 unless told otherwise (the serving image passes --host 0.0.0.0). Request bounds and
batching come from LIFTOFF_SERVE_* variables (`serving.limits`): e.g.
LIFTOFF_SERVE_MAX_BATCH_SIZE=1 serves one request at a time.
"""

from __future__ import annotations

import argparse
import os
import sys

from serving import contract
from trainers.common.secrets import HF_SECRET_ENV, HF_TOKEN_ENV, export_secret


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        default=contract.model_uri(),
        help=f"model directory: local, gs:// or /gcs/ (default: ${contract.STORAGE_URI_ENV})",
    )
    # A string default goes through `type`, so a malformed AIP_HTTP_PORT is a usage error.
    p.add_argument(
        "--port",
        type=int,
        default=contract.port(),
        help=f"port (default: ${contract.PORT_ENV}, else {contract.DEFAULT_PORT})",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="interface to listen on (default: 127.0.0.1)"
    )
    p.add_argument(
        "--no-access-log", action="store_true", help="no log line per request (load tests)"
    )
    p.add_argument(
        "--hf-secret",
        default=os.environ.get(HF_SECRET_ENV, ""),
        help="Secret Manager version holding a Hugging Face token (a gated base model), read "
        f"at start with the server's credentials (default: ${HF_SECRET_ENV})",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.model:
        print(
            f"error: no model to serve; pass --model or set {contract.STORAGE_URI_ENV}",
            file=sys.stderr,
        )
        return 2
    from serving.limits import Limits

    try:
        limits = Limits.from_env()
        # The token goes into this process's environment only, where huggingface_hub finds it.
        export_secret(args.hf_secret, variable=HF_TOKEN_ENV)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import uvicorn

    from serving.server import create_app

    app = create_app(args.model, limits=limits)
    uvicorn.run(app, host=args.host, port=args.port, access_log=not args.no_access_log)
    return 0


if __name__ == "__main__":
    sys.exit(main())
