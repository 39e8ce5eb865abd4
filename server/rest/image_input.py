"""What a REST caller sends as an image, turned into pixels: bounded, every refusal naming its
field.

Three ways in (a ``data:`` URI, an allowed ``https://`` URL, a multipart ``file``), one way out
(RGB uint8 H x W x 3 from ``sam_backends.images.load_image``). Split from ``service`` so that
the service reads as the order of the work; the refusals are ``workbench.errors.Refusal``s that
the service answers as ``RestError`` (413 ``payload_too_large``, 422 ``bad_image`` /
``image_too_large``, the fetcher's own codes).
"""

from __future__ import annotations

import base64
import binascii
import re

import numpy as np

from sam_backends import ImageError, ImageTooLargeError
from sam_backends.images import load_image
from server.rest.images import UrlFetcher
from workbench.errors import Refusal, describe
from workbench.lanes import Deadline

DATA_URI = re.compile(r"data:(?P<type>[A-Za-z0-9.+-]+/[A-Za-z0-9.+-]+)(?P<params>(;[^;,]*)*),")


class ImageInput:
    """Bytes and pixels of a caller's image, within ``max_image_bytes`` and ``max_pixels``."""

    def __init__(self, fetcher: UrlFetcher, max_image_bytes: int, max_pixels: int) -> None:
        self.fetcher = fetcher
        self.max_image_bytes = max_image_bytes
        self.max_pixels = max_pixels

    def text_bytes(self, text: str, deadline: Deadline) -> bytes:
        """The bytes of an ``image`` text field: a ``data:`` URI or a URL to fetch."""
        if text.startswith("data:"):
            return self.data_uri_bytes(text)
        return self.fetch(text, deadline)

    def fetch(self, url: str, deadline: Deadline) -> bytes:
        if not url.startswith(("https://", "http://")):
            raise Refusal(422, "bad_image", (
                "image must be a data: URI (data:image/png;base64,...) or, where this server "
                "fetches URLs, an https:// URL."), "image")
        return self.fetcher.fetch(url, timeout_s=max(0.1, deadline.remaining))  # FetchError

    def data_uri_bytes(self, text: str) -> bytes:
        """The bytes of a ``data:image/...;base64,`` URI (strict base64, size-bounded)."""
        match = DATA_URI.match(text)
        if match is None or ";base64" not in match.group("params").lower():
            raise Refusal(422, "bad_image", (
                "image must be a base64 data: URI such as data:image/png;base64,iVBORw0..."),
                "image")
        if not match.group("type").lower().startswith("image/"):
            raise Refusal(422, "bad_image", (
                f"The data: URI holds {match.group('type')!r}, not an image; send an image/* "
                "media type (JPEG, PNG, WebP, BMP, TIFF, GIF)."), "image")
        payload = text[match.end():]
        if len(payload) // 4 * 3 > self.max_image_bytes + 3:
            raise self.too_big("image")
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(422, "bad_image", (
                "The data: URI's base64 is invalid (only A-Z, a-z, 0-9, +, / and = padding; no "
                "spaces or line breaks)."), "image") from None
        if len(data) > self.max_image_bytes:
            raise self.too_big("image")
        return data

    def too_big(self, field: str) -> Refusal:
        return Refusal(413, "payload_too_large", (
            f"The image is larger than the limit of {self.max_image_bytes:,} bytes; send a "
            "smaller file."), field)

    def load(self, data: bytes, field: str) -> np.ndarray:
        """Decode ``data`` (JPEG, PNG, WebP, BMP, TIFF, GIF) into RGB pixels."""
        if len(data) > self.max_image_bytes:
            raise self.too_big(field)
        try:
            return load_image(data, max_pixels=self.max_pixels)
        except ImageTooLargeError as exc:
            raise Refusal(422, "image_too_large", describe(exc, False)[1], field) from None
        except ImageError as exc:
            raise Refusal(422, "bad_image", describe(exc, False)[1], field) from None
