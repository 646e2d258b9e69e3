"""Principals: who is calling over HTTP, from the bearer token they send; each person's jobs and budget their own.

`SEEDANCE_TOKENS_FILE` is a JSON object of principals, each with the SHA-256 of its token (never the token itself)
and, optionally, its own limits (server-wide defaults otherwise):

    {"alice": {"token_sha256": "9f86d0…", "daily_budget": 20, "confirm_above": 5},
     "bob":   {"token_sha256": "60303a…"}}

`seedance-mcp token NAME --file FILE` makes a token, adds its entry to the file and prints the token once. On stdio
(one local user) there are no tokens and the principal is `""`.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from mcp.server.auth.provider import AccessToken

PRINCIPAL_PREFIX = "principal:"
"""Access tokens of named principals carry `principal:<name>` as their client id."""


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    token_sha256: str
    daily_budget: float | None = None
    max_cost_per_video: float | None = None
    confirm_above: float | None = None


def token_hash(token: str) -> str:
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    import secrets

    return "smcp_" + secrets.token_urlsafe(32)


class TokensFileError(ValueError):
    """A tokens file that cannot be used, said in one line naming the file and, where it can, the line."""


_FIELDS = ("token_sha256", "daily_budget", "max_cost_per_video", "confirm_above")


def load_principals(path: Path) -> dict[str, Principal]:
    """The principals of a tokens file; TokensFileError naming the file, the line and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokensFileError(f"SEEDANCE_TOKENS_FILE {path}: cannot read it ({exc})") from None
    return parse_principals(text, f"SEEDANCE_TOKENS_FILE {path}")


def parse_principals(text: str, where: str) -> dict[str, Principal]:
    """The principals of a tokens file's text; `where` starts each error message (the variable and the file)."""
    import json

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise _DuplicateName(key)
            seen[key] = value
        return seen

    try:
        data: Any = json.loads(text, object_pairs_hook=no_duplicates)
    except _DuplicateName as duplicate:
        line = _line_of_key(text, duplicate.name, occurrence=2)
        raise TokensFileError(
            f"{where}{_at(line)}: {duplicate.name!r} appears twice; keep one entry per name"
        ) from None
    except json.JSONDecodeError as exc:
        if not text.strip():
            raise TokensFileError(
                f"{where}: the file is empty; it must be a JSON object of principals, e.g. {{}}"
            ) from None
        if exc.msg == "Extra data":
            raise TokensFileError(
                f"{where}, line {exc.lineno}: a second JSON value after the first one; the file must be one JSON "
                'object of principals ({"alice": {…}, "bob": {…}}); add people with `seedance-mcp token NAME '
                "--file FILE`, never by appending with >>"
            ) from None
        raise TokensFileError(f"{where}, line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise TokensFileError(f"{where}: expected a JSON object of principals, not {type(data).__name__}")
    principals: dict[str, Principal] = {}
    for name, entry in cast("dict[str, Any]", data).items():
        at = _at(_line_of_key(text, name))
        if not name.strip():
            raise TokensFileError(f"{where}{at}: a principal needs a name (an empty key)")
        if not isinstance(entry, dict):
            raise TokensFileError(f"{where}{at}: {name!r} must be an object with a token_sha256")
        fields: dict[str, Any] = {str(k): v for k, v in cast("dict[Any, Any]", entry).items()}
        if not isinstance(fields.get("token_sha256"), str):
            raise TokensFileError(f"{where}{at}: {name!r} needs a token_sha256 (`seedance-mcp token` makes one)")
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise TokensFileError(
                f"{where}{at}: {name!r} has unknown fields {sorted(unknown)} (known: {', '.join(_FIELDS)})"
            )
        digest = str(fields.pop("token_sha256")).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise TokensFileError(f"{where}{at}: {name!r}: token_sha256 must be 64 hex digits")
        limits: dict[str, float | None] = {}
        for key, value in fields.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise TokensFileError(f"{where}{at}: {name!r}: {key} must be a number ≥ 0")
            limits[key] = float(value) if value is not None else None
        principals[name] = Principal(name=name, token_sha256=digest, **limits)  # pyright: ignore[reportArgumentType]
    return principals


class _DuplicateName(Exception):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


def _line_of_key(text: str, name: str, occurrence: int = 1) -> int | None:
    """The line where `"name":` is written (its `occurrence`-th time), for error messages; None if not found."""
    import json
    import re

    spellings = {json.dumps(name), json.dumps(name, ensure_ascii=False)}
    pattern = "|".join(re.escape(spelling) for spelling in spellings)
    matches = list(re.finditer(rf"(?:{pattern})\s*:", text))
    if len(matches) < occurrence:
        return None
    return text.count("\n", 0, matches[occurrence - 1].start()) + 1


def _at(line: int | None) -> str:
    return f", line {line}" if line is not None else ""


def add_principal(path: Path, name: str, token: str) -> None:
    """Add `name` with `token`'s hash to the tokens file at `path`, creating it (mode 0600) when missing.

    The file is rewritten whole through a temporary file and a rename, so a reader (a starting server) sees the old
    file or the new one, never half of one; concurrent additions in one directory take turns. Refuses
    (TokensFileError) a name already there and a file that does not parse, leaving the file as it was."""
    import json
    import os
    import stat
    import tempfile

    name = name.strip()
    if not name:
        raise TokensFileError("a principal needs a name, e.g. `seedance-mcp token alice --file tokens.json`")
    directory = path.parent if str(path.parent) else Path(".")
    with _directory_lock(directory):
        try:
            text = path.read_text(encoding="utf-8")
            before: os.stat_result | None = path.stat()
        except FileNotFoundError:
            text, before = "{}", None
        except (OSError, UnicodeDecodeError) as exc:
            raise TokensFileError(f"{path}: cannot read it ({exc})") from None
        parse_principals(text, str(path))  # the file must be sound before anything is added to it
        entries: dict[str, Any] = json.loads(text)
        if name in entries:
            raise TokensFileError(
                f"{path}{_at(_line_of_key(text, name))}: {name!r} is already there; remove that entry first to give "
                "them a new token"
            )
        entries[name] = {"token_sha256": token_hash(token)}
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(json.dumps(entries, indent=2, ensure_ascii=False) + "\n")
                out.flush()
                os.fsync(out.fileno())
            # The new file keeps the old one's mode and, where allowed, owner (a container may read it as its uid).
            os.chmod(temporary, stat.S_IMODE(before.st_mode) if before is not None else 0o600)
            if before is not None and hasattr(os, "chown"):
                with contextlib.suppress(OSError):
                    os.chown(temporary, before.st_uid, before.st_gid)
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Generator[None]:
    """An exclusive lock on `directory` (POSIX `flock`; nothing on Windows), held while a file in it is rewritten."""
    import os

    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks on directories
        yield
        return
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


class PrincipalTokenVerifier:
    """Bearer tokens → principals, by hash, compared in constant time; `single` is the one-token setup."""

    def __init__(self, principals: dict[str, Principal], single: str | None = None) -> None:
        self._principals = principals
        self._single = single.encode() if single else None

    async def verify_token(self, token: str) -> AccessToken | None:
        digest = token_hash(token)
        found: Principal | None = None
        for principal in self._principals.values():
            if hmac.compare_digest(digest, principal.token_sha256):
                found = principal
        if found is not None:
            return AccessToken(token="***", client_id=PRINCIPAL_PREFIX + found.name, scopes=["video"])
        if self._single is not None and hmac.compare_digest(token.encode(), self._single):
            return AccessToken(token="***", client_id="seedance-mcp-user", scopes=["video"])
        return None


def principal_of(access_token: AccessToken | None) -> str:
    """The principal a request acts for: a named one, or `""` (stdio, or the single SEEDANCE_HTTP_TOKEN)."""
    if access_token is not None and access_token.client_id.startswith(PRINCIPAL_PREFIX):
        return access_token.client_id[len(PRINCIPAL_PREFIX) :]
    return ""
