"""Serve a trained model over HTTP, as Vertex AI runs a custom prediction container.

    python -m serving --model outputs/demo/model --port 8080
    curl -s localhost:8080/predict -d '{"instances": ["What is 2 + 3?"]}'

On Vertex AI the platform sets AIP_STORAGE_URI (the model's gs:// directory), AIP_HTTP_PORT,
AIP_HEALTH_ROUTE and AIP_PREDICT_ROUTE; with no flags the server follows them.
"""

from __future__ import annotations

import argparse
import os
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m serving",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--model",
        default=os.environ.get("AIP_STORAGE_URI", ""),
        help="model directory: local, gs:// or /gcs/ (default: $AIP_STORAGE_URI)",
    )
    # A string default goes through `type`, so a malformed AIP_HTTP_PORT is a usage error.
    p.add_argument(
        "--port",
        type=int,
        default=os.environ.get("AIP_HTTP_PORT", "8080"),
        help="port (default: $AIP_HTTP_PORT, else 8080)",
    )
    p.add_argument("--host", default="0.0.0.0", help="interface to listen on (default: 0.0.0.0)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.model:
        print("error: no model to serve; pass --model or set AIP_STORAGE_URI", file=sys.stderr)
        return 2
    import uvicorn

    from serving.server import create_app

    uvicorn.run(create_app(args.model), host=args.host, port=args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
