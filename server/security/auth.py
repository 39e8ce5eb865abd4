"""Who may call ``/v1``: bearer API keys (hashed, scoped), and the limits around them.

Every request goes through ``RestSecurity.check`` (a route gets it with
``Depends(security.require("segment"))``), in this order:

1. the client's address is not blocked for failed attempts (else 429, even with a good key);
2. no key in the URL (``?api_key=``, ``?token=``, ``?access_token=``: URLs end up in logs);
3. ``Authorization: Bearer samwb_<id>_<secret>``, parsed strictly, verified against the stored
   SHA-256 in constant time (else 401, counted against the address);
4. the key has the route's scope (else 403);
5. the key is within its rate (else 429 with ``Retry-After``).

Without any key configured, ``/v1`` answers 401 with how to create one, unless the operator
passed ``--api-open-local`` (refused unless bound to a loopback address): then a request without
``Authorization`` from a loopback address gets the all-scopes key ``local``; a request that does
send a key still has it checked, so a client can test its key locally.

Client address: ``request.client.host``; ``X-Forwarded-For`` is never read here (anybody can
send it). Uvicorn (as Gradio starts it) replaces the address with ``X-Forwarded-For`` only for
connections from the addresses in env ``FORWARDED_ALLOW_IPS`` (default 127.0.0.1 and ::1). So a
reverse proxy on the same machine must send ``X-Forwarded-For`` (else every client shares the
proxy's failure budget, and ``--api-open-local`` would let them all in as "local"); a proxy on
another machine needs ``FORWARDED_ALLOW_IPS=<its address>``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from starlette.requests import Request

from server.security.keys import (
    CREATE_HINT,
    SCOPES,
    TOKEN_RE,
    KeyFileError,
    StoredKey,
    parse_key_file,
    read_key_file,
)
from server.security.rate_limits import FailureLimiter, RateLimiter, address_key
from workbench.errors import Refusal

if TYPE_CHECKING:
    from workbench.config import AppConfig

__all__ = ["SCOPES", "ApiKey", "AuthError", "KeyFileError", "KeyStore", "RestSecurity",
           "parse_bearer"]

log = logging.getLogger(__name__)

ENV_KEYS = "SAMWB_API_KEYS"  # the key file's JSON text
ENV_KEYS_FILE = "SAMWB_API_KEYS_FILE"  # a path to the key file
QUERY_TOKEN_NAMES = ("api_key", "token", "access_token")
MAX_HEADER_CHARS = 200  # a valid header is 7 + 58 characters; longer ones are not parsed
RELOAD_EVERY_S = 2.0  # how often the key file's modification time is looked at
NO_KEYS_MESSAGE = (
    "No API keys are configured on this server. Create one with: "
    f"{CREATE_HINT}, then start the app with --api-keys keys.json "
    "(or --api-open-local for local use only).")
FORMAT_HINT = "send 'Authorization: Bearer samwb_<id>_<secret>' (a key from the operator)"
_DUMMY_DIGEST = hashlib.sha256(b"no such key").digest()


@dataclass(frozen=True)
class ApiKey:
    """The caller, once authenticated: what routes and jobs see (never the secret)."""

    key_id: str
    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return scope in self.scopes


LOCAL_KEY = ApiKey(key_id="local", name="local use (--api-open-local)", scopes=frozenset(SCOPES))


class AuthError(Refusal):
    """A refused request. The routes turn it into ``{"error": {"code", "message", "field"}}``
    with ``status`` and ``headers`` (``Retry-After`` on 429, ``WWW-Authenticate`` on 401/403).

    ``code``: "unauthorized" (401), "forbidden" (403) or "rate_limited" (429).
    """

    def __init__(self, status: int, code: str, message: str,
                 retry_after_s: int | None = None) -> None:
        super().__init__(status, code, message, None, retry_after_s)

    @property
    def headers(self) -> dict[str, str]:
        headers = {}
        if self.retry_after_s is not None:
            headers["Retry-After"] = str(int(self.retry_after_s))
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="samwb"'
        elif self.status == 403:
            headers["WWW-Authenticate"] = 'Bearer realm="samwb", error="insufficient_scope"'
        return headers

    def __repr__(self) -> str:
        return f"AuthError({self.status}, {self.code!r}, {self.message!r})"


def _unauthorized(message: str) -> AuthError:
    return AuthError(401, "unauthorized", message)


def parse_bearer(header: str | None) -> str:
    """The token of ``Authorization: Bearer <token>``, or ``AuthError`` (401).

    Strict on purpose: exactly "Bearer", one space, then ``samwb_<8 hex>_<43 base64url>``. The
    header arrives as Starlette decodes it (latin-1), so a non-ASCII byte is a non-ASCII
    character here: refused with 401, never encoded (which would be a 500).
    """
    if header is None or not header.strip():
        raise _unauthorized(f"This API needs a key: {FORMAT_HINT}.")
    if len(header) > MAX_HEADER_CHARS:
        raise _unauthorized(f"The Authorization header is too long; {FORMAT_HINT}.")
    if not header.isascii():
        raise _unauthorized("The Authorization header holds non-ASCII characters; API keys are "
                            f"ASCII: {FORMAT_HINT}.")
    scheme, space, token = header.partition(" ")
    if scheme != "Bearer" or not space:
        raise _unauthorized(f"The Authorization header must start with 'Bearer ' (capital B, "
                            f"one space); {FORMAT_HINT}.")
    if not TOKEN_RE.fullmatch(token):
        raise _unauthorized("The API key is malformed (expected samwb_ then 8 hex characters, "
                            "_ and 43 characters, with nothing around it); copy the whole key "
                            "as the operator gave it.")
    return token


class KeyStore:
    """The configured keys, by id: from a key file (reloaded when it changes, so ``revoke``
    takes effect without a restart) and/or the JSON text in ``SAMWB_API_KEYS``."""

    def __init__(self, file: Path | None = None, fixed: tuple[StoredKey, ...] = (), *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.file = file
        self._fixed = fixed
        self._clock = clock
        self._lock = threading.Lock()
        self._checked = clock()
        # stamp before reading, so a change made while reading is seen by the next refresh
        self._stamp = self._file_stamp() if file is not None else None
        self._by_id = self._merge(read_key_file(file) if file is not None else ())

    @classmethod
    def from_sources(cls, file: Path | None, env_value: str | None, *,
                     clock: Callable[[], float] = time.monotonic) -> KeyStore:
        """Keys from ``file`` (a path) and ``env_value`` (a key file's JSON text), together;
        an id in both, an unreadable file or malformed text raise ``KeyFileError``."""
        fixed = parse_key_file(env_value, ENV_KEYS) if env_value and env_value.strip() else ()
        return cls(Path(file) if file is not None else None, fixed, clock=clock)

    def _merge(self, from_file: tuple[StoredKey, ...]) -> dict[str, StoredKey]:
        by_id = {k.key_id: k for k in self._fixed}
        both = sorted(k.key_id for k in from_file if k.key_id in by_id)
        if both:
            raise KeyFileError(f"Key id(s) {', '.join(both)} are both in {self.file} and in "
                               f"{ENV_KEYS}; keep each key in one place.")
        by_id.update((k.key_id, k) for k in from_file)
        return by_id

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.file)  # type: ignore[arg-type]
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def _refresh(self) -> None:
        """Reload the file if it changed; a broken edit keeps the previous keys (and logs)."""
        if self.file is None:
            return
        now = self._clock()
        with self._lock:
            if now - self._checked < RELOAD_EVERY_S:
                return
            self._checked = now
            stamp = self._file_stamp()
            if stamp == self._stamp:
                return
            try:
                by_id = self._merge(read_key_file(self.file))
            except KeyFileError as error:
                log.warning("keeping the previous API keys: %s", error)
                return
            self._by_id, self._stamp = by_id, stamp
            log.info("reloaded %d API key(s) from %s", len(by_id), self.file)

    @property
    def active_count(self) -> int:
        self._refresh()
        return sum(1 for k in self._by_id.values() if k.revoked is None)

    def authenticate(self, authorization_header: str | None) -> ApiKey:
        """The key named by the header, or ``AuthError`` (401). Unknown ids and wrong secrets
        get the same message and the same work (a digest comparison), so neither tells an
        attacker which ids exist."""
        token = parse_bearer(authorization_header)
        self._refresh()
        key_id = TOKEN_RE.fullmatch(token).group(1)  # type: ignore[union-attr]
        stored = self._by_id.get(key_id)
        expected = bytes.fromhex(stored.sha256) if stored is not None else _DUMMY_DIGEST
        given = hashlib.sha256(token.encode("ascii")).digest()
        if not hmac.compare_digest(given, expected) or stored is None:
            raise _unauthorized("This API key is not valid; check that you copied the whole "
                                "key, or ask the operator for a new one.")
        if stored.revoked is not None:
            raise _unauthorized(f"This API key ({key_id}) was revoked; ask the operator for a "
                                "new one.")
        return ApiKey(key_id=stored.key_id, name=stored.name, scopes=stored.scopes)


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class RestSecurity:
    """Authentication and limits for one app (see the module docstring for the order).

    Args:
        store: the configured keys.
        open_local: no key needed from loopback addresses (the ``--api-open-local`` mode).
        rate_limit_per_min: requests per key per minute, bursts included (0: no limit).
        auth_failures_per_min: failed attempts per client address per minute (0: no limit).
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(self, store: KeyStore, *, open_local: bool = False, rate_limit_per_min: int = 60,
                 auth_failures_per_min: int = 20,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.open_local = open_local
        self.rates = RateLimiter(rate_limit_per_min, clock=clock)
        self.failures = FailureLimiter(auth_failures_per_min, clock=clock)

    @classmethod
    def from_config(cls, config: AppConfig, *, environ: Mapping[str, str] | None = None,
                    clock: Callable[[], float] = time.monotonic) -> RestSecurity:
        """From ``config.api_keys_file`` (else env ``SAMWB_API_KEYS_FILE``), env
        ``SAMWB_API_KEYS``, ``api_open_local`` and the two limits; ``KeyFileError`` at start-up
        if a key source is broken."""
        environ = os.environ if environ is None else environ
        file = config.api_keys_file
        if file is None and environ.get(ENV_KEYS_FILE, "").strip():
            file = Path(environ[ENV_KEYS_FILE].strip()).expanduser()
        store = KeyStore.from_sources(file, environ.get(ENV_KEYS), clock=clock)
        security = cls(store, open_local=config.api_open_local,
                       rate_limit_per_min=config.rate_limit_per_min,
                       auth_failures_per_min=config.auth_failures_per_min, clock=clock)
        if not store.active_count and not config.api_open_local:
            log.warning(NO_KEYS_MESSAGE)
        return security

    def require(self, scope: str | tuple[str, ...]) -> Callable[[Request], ApiKey]:
        """A FastAPI dependency: ``key: ApiKey = Depends(security.require("segment"))``; a
        tuple of scopes lets a key with any one of them in (``/v1/files`` serves the outputs of
        segment and video calls alike)."""
        scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise ValueError(f"Unknown scope {unknown!r}; valid scopes: {', '.join(SCOPES)}.")

        def dependency(request: Request) -> ApiKey:
            return self.check(request, scopes)

        dependency.__name__ = f"require_{'_or_'.join(scopes)}"
        return dependency

    def check(self, request: Request, scope: str | tuple[str, ...]) -> ApiKey:
        """The caller's key for a request needing ``scope`` (or one of several), or
        ``AuthError``."""
        scopes = (scope,) if isinstance(scope, str) else tuple(scope)
        host = request.client.host if request.client else None
        address = address_key(host)
        wait = self.failures.blocked(address)
        if wait is not None:
            raise AuthError(429, "rate_limited", "Too many failed authentication attempts from "
                            f"your address; try again in {wait} s with a valid key.", wait)
        headers = request.headers.getlist("authorization")
        try:
            key = self._authenticate(request, headers, host)
        except AuthError as error:
            # a server without keys refuses everyone alike: that is no attempt to guess
            if error.message != NO_KEYS_MESSAGE and self.failures.record_failure(address):
                log.warning("API: %s reached %d failed authentications in a minute; refused "
                            "for a minute", address, self.failures.per_min)
            log.info("API: refused %r from %s: %s", request.url.path, address, error.message)
            raise
        if not any(key.allows(s) for s in scopes):
            needed = " or ".join(repr(s) for s in scopes)
            raise AuthError(403, "forbidden", f"This API key ({key.key_id}) lacks the "
                            f"{needed} scope needed here; it has: "
                            f"{', '.join(sorted(key.scopes))}. Ask the operator for a key with "
                            f"--scopes {scopes[0]}.")
        wait = self.rates.take(key.key_id)
        if wait is not None:
            raise AuthError(429, "rate_limited", f"This API key made more than "
                            f"{self.rates.per_min} requests in a minute; retry in {wait} s.",
                            wait)
        return key

    def _authenticate(self, request: Request, headers: list[str], host: str | None) -> ApiKey:
        named = [n for n in QUERY_TOKEN_NAMES if n in request.query_params]
        if named:
            raise _unauthorized(f"API keys are not accepted in the URL ({named[0]}=...), where "
                                "they end up in logs and browser history; send the key in the "
                                "Authorization header: 'Authorization: Bearer samwb_...'.")
        if len(headers) > 1:
            raise _unauthorized("Send one Authorization header, not several.")
        header = headers[0] if headers else None
        if self.open_local and header is None:
            if not _is_loopback(host):
                raise _unauthorized("This server is open without keys for local use only (its "
                                    f"own machine); from elsewhere, {FORMAT_HINT}.")
            return LOCAL_KEY
        if not self.open_local and not self.store.active_count:
            raise _unauthorized(NO_KEYS_MESSAGE)
        return self.store.authenticate(header)

