"""The sandbox's HTTP plumbing every route shares: its state from the request, Ark's error envelope and request
ids, the key check, and the planned faults (see `SandboxState.faults`) applied where an answer is made."""

from __future__ import annotations

import secrets
import time
from typing import cast

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from seedance_mcp.sandbox.state import SandboxState

INVALID_KEYS = frozenset({"invalid", "invalid-key", "bad-key"})


def sandbox_of(request: Request) -> SandboxState:
    """The state of the sandbox app serving `request` (see create_sandbox_app)."""
    return cast("SandboxState", request.app.state.sandbox)


def new_request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S") + secrets.token_hex(8)


def ark_error(status: int, code: str, message: str, param: str = "") -> JSONResponse:
    request_id = new_request_id()
    kind = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests"}
    body = {
        "error": {
            "code": code,
            "message": f"{message.rstrip('.')}. Request ID: {request_id}",
            "param": param,
            "type": kind.get(status, "InternalServiceError"),
        }
    }
    return JSONResponse(body, status_code=status, headers={"X-Request-Id": request_id})


class _DroppedConnection(Exception):
    """Raised after a response has started, so the server closes the connection mid-answer."""


class DropResponse(Response):
    """Start an answer and hang up halfway: the client sees the connection drop after its request was sent."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b'{"id": "', "more_body": True})
        raise _DroppedConnection("sandbox fault: connection dropped")


# Faults that replace the whole answer; the others (slow, drop_after, expired_url) act where the answer is made.
_ANSWER_FAULTS = frozenset({"http_429", "http_500", "http_503", "malformed", "drop_before", "bad_status"})


async def apply_fault(state: SandboxState, route: str) -> Response | None:
    """The answer a planned fault replaces the real one with, if one is due."""
    fault = state.take_fault(route, _ANSWER_FAULTS)
    if fault is None:
        return None
    if fault.delay:
        await anyio.sleep(fault.delay)
    match fault.kind:
        case "http_429":
            response = ark_error(429, "RateLimitExceeded.EndpointRPMExceeded", "Too many requests, please retry later.")
            if fault.retry_after is not None:
                response.headers["Retry-After"] = f"{fault.retry_after:g}"
            return response
        case "http_500":
            return ark_error(500, "InternalServiceError", "The service encountered an unexpected internal error.")
        case "http_503":
            return ark_error(503, "ServerOverloaded", "The service is overloaded, please retry later.")
        case "malformed":
            return Response(b'{"id": "cgt-broken', media_type="application/json")
        case "drop_before":
            return DropResponse()
        case _:
            return JSONResponse({"id": "cgt-x", "status": "levitating"})


async def delay_if_slow(state: SandboxState, route: str) -> None:
    fault = state.take_fault(route, frozenset({"slow"}))
    if fault is not None:
        await anyio.sleep(fault.delay or 30.0)


def auth_error(request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return ark_error(401, "AuthenticationError", "The API key is missing. Pass it as a Bearer token.")
    if key.strip() in INVALID_KEYS:
        return ark_error(401, "AuthenticationError", "The API key format is incorrect or the key is invalid.")
    return None


def take(state: SandboxState, route: str, kind: str) -> bool:
    return state.take_fault(route, frozenset({kind})) is not None
