"""Images of prediction instances to pixels, bounded in bytes, pixels, time and concurrency.

    reader = ImageReader(Limits())
    pixels = reader.pixels("instances[0].image", {"b64": "..."}, spec)   # or "gs://b/x.png"

An image is inline base64 (`{"b64": ...}`) or a `gs://BUCKET/OBJECT` read with the server's
own credentials; local paths are refused, so a client cannot make the server read its own
files. Before anything is decoded, the encoded size and the dimensions in the header are
checked against the limits (a 136 KB PNG can claim 12000 x 12000 pixels, 0.5 GB decoded), and
only `num_decoders` images are decoded at once over all requests. A gs:// read gives up after
`storage_timeout_s` (504); storage that answers with an error is a 502; an object that is not
there, or is not an image, is the client's 400.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import sys
import threading
import time
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from PIL import Image

from serving import errors
from serving.errors import RequestError
from serving.limits import ENV_PREFIX, Limits, over_limit

if TYPE_CHECKING:
    import torch

    from trainers.vlm.images import ImageSpec

# A bucket name (3-222 characters of lowercase letters, digits, '-', '_', '.') and an object.
GS_URI = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/([^\r\n]{1,1024})")
EXPECTED = "must be {'b64': base64 image bytes} or a gs://BUCKET/OBJECT URI"
T = TypeVar("T")


class ImageReader:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._decoders = threading.BoundedSemaphore(limits.num_decoders)

    def pixels(self, where: str, value: object, spec: ImageSpec) -> torch.Tensor:
        """Normalised pixels, as in training, of one instance's image."""
        from trainers.vlm.images import decode

        return self.decoded(where, value, lambda data: decode(data, spec))

    def decoded(self, where: str, value: object, decode: Callable[[bytes], T]) -> T:
        """`decode(image bytes)` of one instance's image, read and bounded as above; `decode`
        runs as one of the `num_decoders` and raises ImageError for bytes it cannot take."""
        from trainers.vlm.images import ImageError

        data = self.read(where, value)
        self._check_dimensions(where, data)
        with self._decoders:
            try:
                return decode(data)
            except ImageError as err:
                raise RequestError(f"{where}: {err}", reason=errors.INVALID_IMAGE) from None

    def read(self, where: str, value: object) -> bytes:
        """The encoded image bytes an instance names."""
        if isinstance(value, str) and value.startswith("gs://"):
            return self._read_gs(where, value)
        if not (
            isinstance(value, dict) and list(value) == ["b64"] and isinstance(value["b64"], str)
        ):
            raise RequestError(f"{where} {EXPECTED}")
        try:
            data = base64.b64decode(value["b64"], validate=True)
        except binascii.Error as err:
            raise RequestError(
                f"{where}: image bytes are not valid base64 ({err})", reason=errors.INVALID_IMAGE
            ) from None
        self._check_bytes(where, len(data))
        return data

    def _check_bytes(self, where: str, num_bytes: int) -> None:
        if num_bytes > self.limits.max_image_bytes:
            what = f"{where}: the image is {num_bytes} bytes"
            raise over_limit(what, self.limits, "max_image_bytes", reason=errors.IMAGE_TOO_LARGE)

    def _check_dimensions(self, where: str, data: bytes) -> None:
        try:
            with warnings.catch_warnings():  # PIL warns of large images; the limit below decides
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(io.BytesIO(data)) as image:  # reads the header only
                    width, height = image.size
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
            unknown = isinstance(err, Image.UnidentifiedImageError)
            reason = "cannot identify image file" if unknown else errors.one_line(err)
            raise RequestError(
                f"{where}: image bytes are not a decodable image ({reason})",
                reason=errors.INVALID_IMAGE,
            ) from None
        if width * height > self.limits.max_image_pixels:
            what = f"{where}: the image is {width}x{height} = {width * height} pixels"
            raise over_limit(what, self.limits, "max_image_pixels", reason=errors.IMAGE_TOO_LARGE)

    def _read_gs(self, where: str, uri: str) -> bytes:
        if not GS_URI.fullmatch(uri):
            raise RequestError(f"{where}={uri[:80]!r} is not a gs://BUCKET/OBJECT URI")
        deadline = time.monotonic() + self.limits.storage_timeout_s
        try:
            return self._fetch(where, uri, deadline)
        except RequestError:
            raise
        except FileNotFoundError:
            raise _not_an_image(f"{where}: {uri}: no such object") from None
        except IsADirectoryError:
            raise _not_an_image(f"{where}: {uri} is a folder") from None
        except ValueError as err:
            if not str(err).startswith("Bad Request"):  # e.g. an answer that is not JSON
                raise _storage_failure(where, uri, err) from None
            # gcsfs: the storage called the request invalid (a name it does not take)
            raise _not_an_image(f"{where}: {uri}: {err}") from None
        except Exception as err:  # whatever else goes wrong reading is the storage's trouble
            raise _storage_failure(where, uri, err) from None

    def _fetch(self, where: str, uri: str, deadline: float) -> bytes:
        from trainers.common import storage

        fs, path = storage.filesystem(uri)
        info = fs.info(path, timeout=_remaining(deadline))
        if info.get("type") == "directory":
            raise IsADirectoryError(uri)
        self._check_bytes(where, int(info.get("size") or 0))
        # At most one byte over the limit: an object rewritten larger since `info` is refused too.
        end = self.limits.max_image_bytes + 1
        data = fs.cat_file(path, start=0, end=end, timeout=_remaining(deadline))
        self._check_bytes(where, len(data))
        return data


def _not_an_image(message: str) -> RequestError:
    return RequestError(message, reason=errors.INVALID_IMAGE)


def _remaining(deadline: float) -> float:
    # fsspec treats a timeout of 0 as none at all.
    return max(deadline - time.monotonic(), 0.001)


def _storage_failure(where: str, uri: str, err: Exception) -> RequestError:
    from fsspec.exceptions import FSTimeoutError

    if isinstance(err, FSTimeoutError | TimeoutError):
        return RequestError(
            f"{where}: reading {uri} took longer than the storage timeout "
            f"({ENV_PREFIX}STORAGE_TIMEOUT_S)",
            status=504,
            reason=errors.STORAGE_TIMEOUT,
        )
    detail = errors.one_line(err)[:200] or "no detail"
    failure = RequestError(
        f"{where}: reading {uri} failed: {type(err).__name__}: {detail}",
        status=502,
        reason=errors.STORAGE_ERROR,
    )
    # The server's own trouble, so its log says so; one line: the storage said all there is.
    print(f"storage error: {failure}", file=sys.stderr, flush=True)
    return failure
