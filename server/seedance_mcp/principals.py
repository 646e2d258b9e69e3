"""Principals: who is calling over HTTP, from the bearer token they send; each person's jobs and budget their own.

`SEEDANCE_TOKENS_FILE` is a JSON object of principals, each with the SHA-256 of its token (never the token itself)
and, optionally, its own limits (server-wide defaults otherwise):

    {"alice": {"token_sha256": "9f86d0…", "daily_budget": 20, "confirm_above": 5},
     "bob":   {"token_sha256": "60303a…"}}

`seedance-mcp token NAME` makes a token and prints the entry. On stdio (one local user) there are no tokens and the
principal is `""`.
"""

from __future__ import annotations

import hmac
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


def load_principals(path: Path) -> dict[str, Principal]:
    """The principals of a tokens file; ValueError naming what is wrong."""
    import json

    try:
        data: Any = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: expected a JSON object of principals")
    principals: dict[str, Principal] = {}
    for name, entry in cast("dict[str, Any]", data).items():
        if not isinstance(entry, dict):
            raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: {name!r} must be an object")
        fields: dict[str, Any] = {str(k): v for k, v in cast("dict[Any, Any]", entry).items()}
        if not isinstance(fields.get("token_sha256"), str):
            raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: {name!r} needs a token_sha256")
        unknown = set(fields) - {"token_sha256", "daily_budget", "max_cost_per_video", "confirm_above"}
        if unknown:
            raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: {name!r} has unknown fields {sorted(unknown)}")
        digest = str(fields.pop("token_sha256")).lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: {name!r}: token_sha256 must be 64 hex digits")
        limits: dict[str, float | None] = {}
        for key, value in fields.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ValueError(f"SEEDANCE_TOKENS_FILE {path}: {name!r}: {key} must be a number ≥ 0")
            limits[key] = float(value) if value is not None else None
        principals[name] = Principal(name=name, token_sha256=digest, **limits)  # pyright: ignore[reportArgumentType]
    return principals


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
