"""API keys: their format, the key file that holds their hashes, and the CLI that manages it.

A key is ``samwb_<key_id>_<secret>``: ``key_id`` is 8 lowercase hex characters (public, it
names the key in logs and in ``list``), ``secret`` is 43 URL-safe base64 characters
(``secrets.token_urlsafe(32)``, 256 bits). The server never stores a key, only the SHA-256 of
its full text, so a leaked key file or environment variable gives nobody access; a plain SHA-256
(no slow hash) is enough because the secret is random, not a password. The file::

    {"version": 1, "keys": [{"id": "1a2b3c4d", "name": "me", "scopes": ["segment", "jobs"],
                             "sha256": "<64 hex>", "created": "2026-12-01T22:00:00+00:00"}]}

``revoke`` adds ``"revoked": "<iso time>"`` and keeps the entry, so the file says what happened.

    python -m server.security.keys create --name me --scopes segment,jobs --file keys.json
    python -m server.security.keys list --file keys.json
    python -m server.security.keys revoke 1a2b3c4d --file keys.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

# segment: /v1/segment and /v1/images; jobs: /v1/jobs; video: POST /v1/video (its job is then
# read and cancelled through /v1/jobs, which needs the jobs scope too); metrics: GET /metrics
# when the app runs with --metrics key
SCOPES = ("segment", "jobs", "video", "metrics")
KEY_FILE_VERSION = 1
TOKEN_RE = re.compile(r"samwb_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")
KEY_ID_RE = re.compile(r"[0-9a-f]{8}")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
MAX_NAME_CHARS = 64
CREATE_HINT = "python -m server.security.keys create --name me --file keys.json"
_FIELDS = {"id", "name", "scopes", "sha256", "created", "revoked"}


class KeyFileError(ValueError):
    """A key file (or ``SAMWB_API_KEYS``) that cannot be used; the message says how to fix it."""


@dataclass(frozen=True)
class StoredKey:
    """One entry of the key file: what the server knows about a key (never the key itself)."""

    key_id: str
    name: str
    scopes: frozenset[str]
    sha256: str  # hex of sha256(full key text, ASCII)
    created: str
    revoked: str | None = None

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {"id": self.key_id, "name": self.name,
                               "scopes": [s for s in SCOPES if s in self.scopes],
                               "sha256": self.sha256, "created": self.created}
        if self.revoked is not None:
            row["revoked"] = self.revoked
        return row


def digest(token: str) -> str:
    """The stored form of a key: hex SHA-256 of its ASCII text."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def parse_scopes(text: str | Sequence[str]) -> frozenset[str]:
    """``"segment,jobs"`` (or a list) -> scopes; unknown or no scopes raise ``KeyFileError``."""
    parts = text.replace(",", " ").split() if isinstance(text, str) else list(text)
    unknown = [p for p in parts if p not in SCOPES]
    if unknown or not parts:
        raise KeyFileError(f"Unknown or missing scope(s) {', '.join(map(repr, unknown)) or '-'}; "
                           f"valid scopes: {', '.join(SCOPES)}.")
    return frozenset(parts)


def new_key(name: str, scopes: frozenset[str], taken: Sequence[str] = ()) -> tuple[str, StoredKey]:
    """A fresh key: (the plain key, shown once to the person; its entry for the file).

    ``taken``: key ids already in the file, so the new id is unique there.
    """
    _check_name(name)
    scopes = parse_scopes(sorted(scopes))
    while True:
        key_id = secrets.token_hex(4)
        if key_id not in taken:
            break
    token = f"samwb_{key_id}_{secrets.token_urlsafe(32)}"
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return token, StoredKey(key_id, name, scopes, digest(token), created)


def parse_key_file(text: str, source: str) -> tuple[StoredKey, ...]:
    """The entries of a key file's JSON text; ``source`` names it in error messages.

    Strict, so a typo (``"scope"``) or a plain key pasted where hashes belong is refused at
    start-up rather than silently locking everyone out. The text is never echoed back.
    """
    if text.strip().startswith("samwb_"):
        raise KeyFileError(
            f"{source} holds a plain API key; the server stores only hashes. Create keys with "
            f"{CREATE_HINT} and use that file (or its JSON text).")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise KeyFileError(f"{source} is not valid JSON ({error.msg} at line {error.lineno}); "
                           f"create it with {CREATE_HINT}.") from None
    if not isinstance(data, dict) or data.get("version") != KEY_FILE_VERSION:
        raise KeyFileError(f'{source} must be {{"version": {KEY_FILE_VERSION}, "keys": [...]}}, '
                           f"as written by {CREATE_HINT}.")
    rows = data.get("keys")
    if not isinstance(rows, list) or set(data) - {"version", "keys"}:
        raise KeyFileError(f'{source}: "keys" must be a list and the only other field "version".')
    keys = tuple(_parse_row(row, f"{source}, key #{n + 1}") for n, row in enumerate(rows))
    ids = [k.key_id for k in keys]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise KeyFileError(f"{source}: key id(s) {', '.join(duplicated)} appear more than once; "
                           "keep one entry per id.")
    return keys


def _parse_row(row: Any, where: str) -> StoredKey:
    if not isinstance(row, dict):
        raise KeyFileError(f"{where} must be an object with id, name, scopes, sha256, created.")
    extra = sorted(set(row) - _FIELDS)
    missing = sorted({"id", "name", "scopes", "sha256", "created"} - set(row))
    if extra or missing:
        raise KeyFileError(f"{where}: unknown field(s) {extra or '-'}, missing {missing or '-'}.")
    key_id, sha, name, created = row["id"], row["sha256"], row["name"], row["created"]
    if not isinstance(key_id, str) or not KEY_ID_RE.fullmatch(key_id):
        raise KeyFileError(f"{where}: id must be 8 lowercase hex characters.")
    if not isinstance(sha, str) or not SHA256_RE.fullmatch(sha):
        raise KeyFileError(f"{where}: sha256 must be 64 lowercase hex characters (the key's "
                           "hash, never the key).")
    if not isinstance(row["scopes"], list) or not all(isinstance(s, str) for s in row["scopes"]):
        raise KeyFileError(f"{where}: scopes must be a list, e.g. {list(SCOPES)}.")
    revoked = row.get("revoked")
    if not isinstance(created, str) or not (revoked is None or isinstance(revoked, str)):
        raise KeyFileError(f"{where}: created and revoked must be ISO times (text).")
    if not isinstance(name, str):
        raise KeyFileError(f"{where}: name must be text.")
    try:
        _check_name(name)
        scopes = parse_scopes(row["scopes"])
    except KeyFileError as error:
        raise KeyFileError(f"{where}: {error}") from None
    return StoredKey(key_id, name, scopes, sha, created, revoked)


def _check_name(name: str) -> None:
    if not name.strip() or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise KeyFileError(f"A key's name must be 1 to {MAX_NAME_CHARS} printable characters.")


def read_key_file(path: Path) -> tuple[StoredKey, ...]:
    """The entries of the key file at ``path``; a missing file raises ``KeyFileError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFileError(f"API key file {path} not found; create it with "
                           f"{CREATE_HINT}.") from None
    except (OSError, UnicodeDecodeError) as error:
        raise KeyFileError(f"API key file {path} cannot be read ({error}).") from None
    return parse_key_file(text, f"API key file {path}")


def write_key_file(path: Path, keys: Sequence[StoredKey]) -> None:
    """Write the file atomically with mode 0600: a running server reloading it never sees half
    a file, and other users of the machine cannot read even the hashes."""
    path = Path(path)
    text = json.dumps({"version": KEY_FILE_VERSION, "keys": [k.to_json() for k in keys]},
                      indent=2) + "\n"
    fd, temp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _existing(path: Path) -> tuple[StoredKey, ...]:
    return read_key_file(path) if path.exists() else ()


def _create(args: argparse.Namespace) -> int:
    keys = _existing(args.file)
    token, entry = new_key(args.name, parse_scopes(args.scopes), [k.key_id for k in keys])
    write_key_file(args.file, (*keys, entry))
    print(f"Created API key {entry.key_id} ({entry.name!r}, scopes "
          f"{', '.join(sorted(entry.scopes))}) in {args.file}.\n"
          "This is the only time the key is shown; store it like a password:\n\n"
          f"    {token}\n\n"
          f"Start the app with: python app.py --api-keys {args.file}\n"
          "and send the key in the Authorization header of each request, e.g.\n"
          f"    curl -H 'Authorization: Bearer {token}' http://127.0.0.1:7860/v1/models")
    return 0


def _list(args: argparse.Namespace) -> int:
    keys = read_key_file(args.file)
    if not keys:
        print(f"No keys in {args.file}; create one with {CREATE_HINT}.")
    for key in keys:
        state = f"revoked {key.revoked}" if key.revoked else "active"
        print(f"{key.key_id}  {key.name}  scopes={','.join(sorted(key.scopes))}  "
              f"created {key.created}  {state}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    keys = read_key_file(args.file)
    match = [k for k in keys if k.key_id == args.key_id]
    if not match:
        known = ", ".join(k.key_id for k in keys) or "none"
        print(f"No key {args.key_id!r} in {args.file} (ids there: {known}).", file=sys.stderr)
        return 1
    if match[0].revoked:
        print(f"Key {args.key_id} was already revoked at {match[0].revoked}.")
        return 0
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_key_file(args.file, [replace(k, revoked=now) if k.key_id == args.key_id else k
                               for k in keys])
    print(f"Revoked key {args.key_id}; a running server refuses it within a few seconds.")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m server.security.keys",
                                     description="Manage the REST API's keys (hashes only).")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="add a key and print it once")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.add_argument("--scopes", default=",".join(SCOPES),
                        help=f"comma-separated, from {', '.join(SCOPES)} (default: all)")
    create.set_defaults(run=_create)
    listing = commands.add_parser("list", help="ids, names and scopes (never secrets)")
    listing.set_defaults(run=_list)
    revoke = commands.add_parser("revoke", help="refuse a key from now on")
    revoke.add_argument("key_id", help="the 8 hex characters after samwb_")
    revoke.set_defaults(run=_revoke)
    for sub in (create, listing, revoke):
        sub.add_argument("--file", type=Path, required=True, help="the key file (JSON)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except (KeyFileError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
