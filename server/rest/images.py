"""Where the REST API's images come from and where its output files wait: all bound to a key.

* ``ImageStore``: images uploaded once (``POST /v1/images``) and referred to by id later, so a
  client sends the bytes once and every later call hits the embedding cache. Decoded arrays
  are kept (no re-decoding, the digest computed once), bounded in count and bytes, expiring.
* ``FileStore``: the PNGs of ``output: "url"`` responses, served by ``GET /v1/files/{token}``.
* ``UrlFetcher``: ``https://`` images, only when the operator lists the hosts
  (``--url-fetch-hosts``). Fetching on a caller's behalf is the classic SSRF hole, so: exact
  host allow-list, every resolved address must be public (no loopback, private, link-local or
  reserved ones), the connection goes to the address that was checked (no second DNS lookup
  that a rebinding server could answer differently), redirects are refused, not followed, and
  the size and total time are bounded.

Ids and tokens are ``secrets.token_urlsafe``; a lookup with another key's id answers "no such
image" exactly as for an id that never existed, so ids cannot be probed.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, TypeVar
from urllib.parse import urlsplit

import numpy as np

from workbench.errors import Refusal

IMAGE_TTL_S = 3600
MAX_IMAGES = 256  # all keys together
MAX_IMAGES_PER_KEY = 32
MAX_IMAGE_BYTES = 1 << 30  # decoded RGB bytes of all stored images together
MAX_IMAGE_BYTES_PER_KEY = 256 << 20
FILE_TTL_S = 900
MAX_FILES = 2048
MAX_FILES_PER_KEY = 256
_GONE_REMEMBERED = 4096  # ids whose end is remembered, to say "expired" rather than "unknown"

T = TypeVar("T")


class UnknownImageError(LookupError):
    """No image (or file) with this id for this key.

    ``reason``: "expired" (its time was up), "replaced" (the key stored more than its quota, and
    this was its own oldest) or "unknown" (never stored here, another key's, or stored before a
    restart: the stores live in memory). Another key's id always reads "unknown".
    """

    def __init__(self, item_id: str, reason: str = "unknown") -> None:
        super().__init__(item_id)
        self.reason = reason


class StoreFullError(Exception):
    """Every key together fills the store's global bound; nothing of another key is dropped."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FetchError(Refusal):
    """A URL that was refused or could not be fetched; ``code`` is machine-readable
    ("url_fetch_disabled", "url_refused", "url_fetch_failed", "url_too_large")."""

    def __init__(self, code: str, message: str, status: int = 422) -> None:
        super().__init__(status, code, message, "image")


@dataclass(frozen=True)
class StoredImage:
    """An uploaded image: RGB uint8 H x W x 3 (read-only) and its content digest."""

    image_id: str
    image: np.ndarray
    digest: str


@dataclass(frozen=True)
class StoredFile:
    """An output file waiting to be downloaded."""

    token: str
    path: Path
    media_type: str = "image/png"


class OwnedStore(Generic[T]):
    """Values by random id, each owned by one key id; bounded in count and bytes per key and in
    all, expiring after ``ttl_s``.

    A key that goes past its own quota loses its own oldest entries, never another key's; when
    all keys together fill the global bound, ``put`` is refused (``StoreFullError``) rather than
    taking anyone's data. ``on_drop`` is called (outside the lock; it must be quick) for every
    value that leaves the store.
    """

    def __init__(self, max_count: int, max_bytes: int, ttl_s: float, prefix: str,
                 on_drop: Callable[[T], None] | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 per_key_count: int | None = None, per_key_bytes: int | None = None) -> None:
        self.max_count = max(1, int(max_count))
        self.max_bytes = max(1, int(max_bytes))
        self.per_key_count = max(1, int(per_key_count or self.max_count))
        self.per_key_bytes = max(1, int(per_key_bytes or self.max_bytes))
        self.ttl_s = float(ttl_s)
        self.prefix = prefix
        self._on_drop = on_drop
        self._clock = clock
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[str, float, int, T]] = OrderedDict()
        self._bytes = 0
        self._gone: OrderedDict[str, tuple[str, str]] = OrderedDict()  # id -> (key, reason)

    def new_id(self) -> str:
        return f"{self.prefix}{secrets.token_urlsafe(18)}"

    def put(self, key_id: str, value: T, size: int, item_id: str | None = None) -> str:
        """Store ``value`` for ``key_id``; returns its id. ``size`` counts against the bytes.

        Raises:
            StoreFullError: the other keys' entries fill the global bound.
        """
        item_id = item_id or self.new_id()
        size = int(size)
        dropped: list[T] = []
        try:
            with self._lock:
                self._expire_locked(dropped)
                own = [i for i, entry in self._items.items() if entry[0] == key_id]
                own_bytes = sum(self._items[i][2] for i in own)
                while own and (len(own) + 1 > self.per_key_count
                               or own_bytes + size > self.per_key_bytes):
                    oldest = own.pop(0)
                    own_bytes -= self._items[oldest][2]
                    self._drop_locked(oldest, dropped, "replaced")
                if len(self._items) + 1 > self.max_count or self._bytes + size > self.max_bytes:
                    soonest = min((entry[1] for entry in self._items.values()),
                                  default=self._clock())
                    retry = max(1, int(soonest - self._clock()) + 1)
                    raise StoreFullError(
                        f"The server's store is full ({len(self._items)} entries of all keys "
                        f"together). Retry in about {retry} s, when entries expire.", retry)
                self._items[item_id] = (key_id, self._clock() + self.ttl_s, size, value)
                self._bytes += size
        finally:
            self._dropped(dropped)
        return item_id

    def get(self, item_id: str, key_id: str) -> T:
        """The value stored under ``item_id`` by ``key_id``.

        Raises:
            UnknownImageError: with ``reason`` "expired", "replaced" or "unknown" (unknown
                also for another key's id, so nothing about other keys leaks).
        """
        dropped: list[T] = []
        with self._lock:
            self._expire_locked(dropped)
            entry = self._items.get(item_id)
            gone = self._gone.get(item_id)
        self._dropped(dropped)
        if entry is None or not secrets.compare_digest(entry[0], key_id):
            reason = "unknown"
            if entry is None and gone is not None and secrets.compare_digest(gone[0], key_id):
                reason = gone[1]
            raise UnknownImageError(item_id, reason)
        return entry[3]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def _expire_locked(self, dropped: list[T]) -> None:
        now = self._clock()
        for item_id in [i for i, entry in self._items.items() if entry[1] <= now]:
            self._drop_locked(item_id, dropped, "expired")

    def _drop_locked(self, item_id: str, dropped: list[T], reason: str) -> None:
        key_id, _, size, value = self._items.pop(item_id)
        self._bytes -= size
        dropped.append(value)
        self._gone[item_id] = (key_id, reason)
        while len(self._gone) > _GONE_REMEMBERED:
            self._gone.popitem(last=False)

    def _dropped(self, values: list[T]) -> None:
        if self._on_drop is not None:
            for value in values:
                self._on_drop(value)


class ImageStore:
    """Uploaded images by id (``img_...``), owned by the key that uploaded them."""

    def __init__(self, max_images: int = MAX_IMAGES, max_bytes: int = MAX_IMAGE_BYTES,
                 ttl_s: float = IMAGE_TTL_S, per_key: int = MAX_IMAGES_PER_KEY,
                 per_key_bytes: int = MAX_IMAGE_BYTES_PER_KEY) -> None:
        self.per_key = min(per_key, max_images)
        self._store: OwnedStore[StoredImage] = OwnedStore(
            max_images, max_bytes, ttl_s, "img_", per_key_count=self.per_key,
            per_key_bytes=per_key_bytes)

    @property
    def ttl_s(self) -> int:
        return int(self._store.ttl_s)

    def add(self, key_id: str, image: np.ndarray, digest: str) -> StoredImage:
        image = np.array(image, dtype=np.uint8, copy=True)
        image.setflags(write=False)  # shared by every later call with this id
        image_id = self._store.new_id()
        stored = StoredImage(image_id, image, digest)
        self._store.put(key_id, stored, image.nbytes, image_id)
        return stored

    def get(self, image_id: str, key_id: str) -> StoredImage:
        """Raises ``UnknownImageError`` (see ``OwnedStore.get``)."""
        return self._store.get(image_id, key_id)

    def __len__(self) -> int:
        return len(self._store)


class FileStore:
    """Output files by token, each in ``folder``, owned by a key; deleted when dropped."""

    def __init__(self, folder: Path, max_files: int = MAX_FILES, ttl_s: float = FILE_TTL_S,
                 max_bytes: int = 1 << 30, per_key: int = MAX_FILES_PER_KEY,
                 reserve: Callable[[int, str], None] | None = None) -> None:
        self.folder = Path(folder)
        self._reserve = reserve  # the temp folder's bound, asked before each write
        self.ttl_s = int(ttl_s)
        self.per_key = min(per_key, max_files)
        self._store: OwnedStore[StoredFile] = OwnedStore(
            max_files, max_bytes, ttl_s, "", on_drop=lambda f: f.path.unlink(missing_ok=True),
            per_key_count=self.per_key, per_key_bytes=max(1, max_bytes // 4))

    def add(self, key_id: str, data: bytes, suffix: str = ".png",
            media_type: str = "image/png") -> str:
        """Write ``data`` and return its token (the file's name without the suffix)."""
        if self._reserve is not None:
            self._reserve(len(data), "The output file")
        token = self._store.new_id()
        path = self.folder / f"{token}{suffix}"
        path.write_bytes(data)
        try:
            self._store.put(key_id, StoredFile(token, path, media_type), len(data), token)
        except StoreFullError:
            path.unlink(missing_ok=True)
            raise
        return token

    def get(self, token: str, key_id: str) -> StoredFile:
        """Raises ``UnknownImageError`` when unknown, expired, another key's or deleted from
        disk (the temp folder's bound may have removed it)."""
        stored = self._store.get(token, key_id)
        if not stored.path.is_file():
            raise UnknownImageError(token, "expired")
        return stored


# --- URL fetching ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FetchPolicy:
    """What ``UrlFetcher`` may fetch.

    Attributes:
        hosts: exact host names allowed (lower case); empty: fetching is off.
        allow_private: also allow loopback/private addresses and plain ``http://`` (for tests
            against a local server only; never on a real deployment).
        max_bytes: the largest image accepted (the upload limit).
        timeout_s: the whole fetch, connection to last byte.
    """

    hosts: tuple[str, ...] = ()
    allow_private: bool = False
    max_bytes: int = 25_000_000
    timeout_s: float = 10.0

    @property
    def enabled(self) -> bool:
        return bool(self.hosts)


Resolver = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6), as text."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def public_address(text: str) -> bool:
    """True for a globally routable unicast address (IPv4-mapped IPv6 judged as IPv4)."""
    address = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (address.is_private or address.is_loopback or address.is_link_local
                or address.is_reserved or address.is_multicast or address.is_unspecified
                or not address.is_global)


class UrlFetcher:
    """Fetches images from allowed hosts (see the module docstring and ``FetchPolicy``)."""

    def __init__(self, policy: FetchPolicy, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self._resolve = resolver

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def fetch(self, url: str, timeout_s: float | None = None) -> bytes:
        """The bytes at ``url``, within the policy.

        Args:
            timeout_s: a tighter limit than the policy's (the request's remaining time).

        Raises:
            FetchError: fetching is off, the URL is refused, or the fetch failed.
        """
        if not self.policy.enabled:
            raise FetchError("url_fetch_disabled", (
                "This server does not fetch images from URLs. Send the image as a data: URI "
                "(data:image/png;base64,...) or upload it (multipart)."))
        parts = self._checked_url(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = self._checked_address(host, port)
        limit = self.policy.timeout_s if timeout_s is None else min(timeout_s,
                                                                    self.policy.timeout_s)
        return self._get(parts, host, port, address, max(0.1, limit))

    def _checked_url(self, url: str):
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError:
            raise FetchError("url_refused", "The image URL is malformed.") from None
        schemes = ("https", "http") if self.policy.allow_private else ("https",)
        if parts.scheme not in schemes:
            raise FetchError("url_refused", (
                f"Only https:// image URLs are fetched, got {parts.scheme or 'no'} scheme."))
        if parts.username is not None or parts.password is not None:
            raise FetchError("url_refused", "Image URLs with a user name or password are "
                                            "refused.")
        host = (parts.hostname or "").rstrip(".").lower()
        if host not in self.policy.hosts:
            raise FetchError("url_refused", (
                f"Images are fetched only from the hosts this server allows; {host or 'no host'!r}"
                " is not one of them. Send the image as a data: URI or upload it instead."))
        return parts

    def _checked_address(self, host: str, port: int) -> str:
        try:
            addresses = self._resolve(host, port)
        except (OSError, UnicodeError):
            raise FetchError("url_fetch_failed", f"The host {host!r} could not be resolved.",
                             502) from None
        if not addresses:
            raise FetchError("url_fetch_failed", f"The host {host!r} has no address.", 502)
        if not self.policy.allow_private:
            blocked = [a for a in addresses if not public_address(a)]
            if blocked:
                raise FetchError("url_refused", (
                    f"The host {host!r} resolves to a private, loopback or reserved address; "
                    "such addresses are never fetched."))
        return addresses[0]

    def _get(self, parts, host: str, port: int, address: str, limit: float) -> bytes:
        import httpx

        ip_host = f"[{address}]" if ":" in address else address
        target = parts._replace(netloc=f"{ip_host}:{port}").geturl()
        default_port = port == (443 if parts.scheme == "https" else 80)
        headers = {"Host": host if default_port else f"{host}:{port}",
                   "Accept": "image/*"}
        started = time.monotonic()
        try:
            with httpx.Client(follow_redirects=False, timeout=limit, trust_env=False) as client:
                with client.stream("GET", target, headers=headers,
                                   extensions={"sni_hostname": host}) as response:
                    return self._read(response, host, started, limit)
        except FetchError:
            raise
        except httpx.TimeoutException:
            raise FetchError("url_fetch_failed", (
                f"Fetching the image from {host} took longer than {limit:g} s."), 504) from None
        except httpx.HTTPError as exc:
            raise FetchError("url_fetch_failed", (
                f"The image could not be fetched from {host} ({type(exc).__name__})."),
                502) from None

    def _read(self, response, host: str, started: float, limit: float) -> bytes:
        if 300 <= response.status_code < 400:
            raise FetchError("url_refused", (
                f"{host} answered with a redirect ({response.status_code}); redirects are not "
                "followed. Send the final URL."))
        if response.status_code != 200:
            raise FetchError("url_fetch_failed", (
                f"{host} answered {response.status_code} for the image URL."), 502)
        max_bytes = self.policy.max_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            raise self._too_large(max_bytes)
        chunks, seen = [], 0
        for chunk in response.iter_bytes():
            seen += len(chunk)
            if seen > max_bytes:
                raise self._too_large(max_bytes)
            if time.monotonic() - started > limit:
                raise FetchError("url_fetch_failed", (
                    f"Fetching the image from {host} took longer than {limit:g} s."), 504)
            chunks.append(chunk)
        return b"".join(chunks)

    @staticmethod
    def _too_large(max_bytes: int) -> FetchError:
        return FetchError("url_too_large", (
            f"The image at the URL is larger than the limit of {max_bytes:,} bytes."), 413)
