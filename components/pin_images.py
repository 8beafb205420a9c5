"""Pin the component images by digest: rewrite the three defaults in components/images.py.

    python -m components.pin_images \\
        --trainer us-central1-docker.pkg.dev/P/liftoff/trainer@sha256:<64 hex> \\
        --serving us-central1-docker.pkg.dev/P/liftoff/serving@sha256:<64 hex> \\
        --serving-gpu us-central1-docker.pkg.dev/P/liftoff/serving-gpu@sha256:<64 hex>

Cloud Build runs this after pushing the images and before compiling, so a compiled pipeline
names exactly the bytes that were built and tested. Only the three assignment lines change;
every other byte of the module is kept. Standard library only: Cloud Build's SDK image runs it
with its own python3. A reference without `@sha256:<64 hex>` is refused (exit 2) and nothing is
written.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

IMAGES_MODULE = Path(__file__).with_name("images.py")
DIGEST_REFERENCE = re.compile(r"[a-z0-9][a-z0-9._\-/:]*@sha256:[0-9a-f]{64}")
# The command-line flag of each default.
VARIABLES = {
    "trainer": "DEFAULT_TRAINER_IMAGE",
    "serving": "DEFAULT_SERVING_IMAGE",
    "serving_gpu": "DEFAULT_SERVING_GPU_IMAGE",
}


def pin(text: str, *, trainer: str, serving: str, serving_gpu: str) -> str:
    """`text` (the source of components/images.py) with the three defaults set to the given
    digest references."""
    images = {"trainer": trainer, "serving": serving, "serving_gpu": serving_gpu}
    for flag, variable in VARIABLES.items():
        text = _assign(text, variable=variable, image=images[flag])
    return text


def _assign(text: str, *, variable: str, image: str) -> str:
    if not DIGEST_REFERENCE.fullmatch(image):
        raise ValueError(f"{variable}: {image!r} is not pinned: expected IMAGE@sha256:<64 hex>")
    line = re.compile(rf'^({variable} = )"[^"\n]*"(  # noqa: E501)?$', flags=re.MULTILINE)
    # A digest reference is longer than a line, so the pinned line carries its noqa (a pinned
    # module may be committed and linted). A function as replacement: the reference is inserted
    # literally, never read as a template.
    text, count = line.subn(lambda match: f'{match.group(1)}"{image}"  # noqa: E501', text)
    if count != 1:
        raise ValueError(f'{variable}: expected one line `{variable} = "..."`, found {count}')
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m components.pin_images",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag in VARIABLES:
        image = flag.replace("_", "-")
        parser.add_argument(f"--{image}", required=True, help=f"{image} image, IMAGE@sha256:...")
    parser.add_argument("--file", type=Path, default=IMAGES_MODULE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        # Bytes in and out: no newline translation, so the rest of the file stays byte-identical.
        source = args.file.read_bytes().decode("utf-8")
        images = {flag: getattr(args, flag) for flag in VARIABLES}
        pinned = pin(source, **images)
    except (ValueError, OSError) as err:
        print(f"pin_images: error: {err}", file=sys.stderr)
        return 2
    args.file.write_bytes(pinned.encode("utf-8"))
    print(f"pinned {args.file}:")
    for flag, image in images.items():
        print(f"  {VARIABLES[flag]} = {image}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
