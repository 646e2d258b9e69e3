"""`seedance-mcp serve --http`: streamable HTTP with a bearer token and DNS-rebinding protection."""

from __future__ import annotations

import hmac

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from seedance_mcp.config import Settings

LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*", "[::1]:*"]


class StaticTokenVerifier:
    """Accepts exactly one bearer token (compared in constant time)."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token="***", client_id="seedance-mcp-user", scopes=["video"])
        return None


def http_security(
    host: str, port: int, token: str | None
) -> tuple[StaticTokenVerifier | None, AuthSettings | None, TransportSecuritySettings]:
    """Auth and transport-security settings for a bind address. Host checks stay on whatever the address."""
    allowed = list(LOOPBACK_HOSTS)
    if host not in ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::"):
        allowed += [host, f"{host}:{port}"]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed,
        allowed_origins=[f"http://{h}" for h in allowed],
    )
    if token is None:
        return None, None, security
    url_host = host if host not in ("0.0.0.0", "::") else "127.0.0.1"
    auth = AuthSettings(
        issuer_url=f"http://{url_host}:{port}",  # pyright: ignore[reportArgumentType]
        resource_server_url=f"http://{url_host}:{port}/mcp",  # pyright: ignore[reportArgumentType]
        required_scopes=["video"],
        validate_token_resource=False,
    )
    return StaticTokenVerifier(token), auth, security


def serve_http(settings: Settings, *, host: str, port: int, token: str | None) -> None:
    from seedance_mcp.app import create_app

    verifier, auth, security = http_security(host, port, token)
    server = create_app(settings, token_verifier=verifier, auth=auth)
    server.run("streamable-http", host=host, port=port, transport_security=security)
