"""The one seam where HTTP becomes our errors, and the retry rules: narrow edges on httpx.MockTransport."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import (
    AuthenticationFailed,
    CreateAnswerLost,
    ProviderError,
    ProviderUnreachable,
    RateLimited,
)
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._http import RetryPolicy, parse_retry_after
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import HttpRequest
from tests.conftest import SECRET_KEY

pytestmark = pytest.mark.anyio

BASE = "https://ark.example/api/v3"
CREATE = HttpRequest(method="POST", url=f"{BASE}/contents/generations/tasks", json_body={"model": "m", "content": []})
FAST = RetryPolicy(attempts=4, timeout=5, base_delay=0.001, max_delay=0.002, max_retry_after=0.01)


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> ProviderClient:
    return ProviderClient(
        preset=PRESETS["ark"],
        dialect=dialect_for("ark"),
        base_url=BASE,
        api_key=SECRET_KEY,
        http=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
        retry=FAST,
    )


def ark_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"error": {"code": code, "message": f"boom. Request ID: req-{status}", "type": "X"}}
    return httpx.Response(status, json=body, headers=headers or {})


async def test_the_key_goes_only_in_the_authorization_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "cgt-1"})

    assert await client_for(handler).submit(CREATE) == "cgt-1"
    assert seen[0].headers["authorization"] == f"Bearer {SECRET_KEY}"
    assert SECRET_KEY.encode() not in seen[0].content


async def test_a_401_says_the_key_was_refused_and_keeps_code_and_request_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={"error": {"code": "AuthenticationError", "message": f"bad key {SECRET_KEY}"}},
            headers={"X-Request-Id": "req-401"},
        )

    with pytest.raises(AuthenticationFailed) as caught:
        await client_for(handler).submit(CREATE)
    error = caught.value
    assert (error.status_code, error.code, error.request_id) == (401, "AuthenticationError", "req-401")
    assert "key was refused" in str(error) and SECRET_KEY not in str(error)


async def test_a_create_that_never_connected_is_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={"id": "cgt-2"})

    assert await client_for(handler).submit(CREATE) == "cgt-2"
    assert calls == 2


async def test_a_create_that_may_have_been_taken_is_never_sent_again() -> None:
    """Read time-out, dropped connection, 500, unreadable 2xx: one request, then CreateAnswerLost."""
    outcomes: list[Callable[[httpx.Request], httpx.Response]] = []

    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    def dropped(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed connection", request=request)

    def server_error(request: httpx.Request) -> httpx.Response:
        return ark_error(500, "InternalServiceError")

    def unreadable(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, text="{")

    outcomes += [timeout, dropped, server_error, unreadable]
    for outcome in outcomes:
        calls = 0

        def handler(
            request: httpx.Request, outcome: Callable[[httpx.Request], httpx.Response] = outcome
        ) -> httpx.Response:
            nonlocal calls
            calls += 1
            return outcome(request)

        with pytest.raises(CreateAnswerLost):
            await client_for(handler).submit(CREATE)
        assert calls == 1


async def test_a_create_refused_for_load_is_retried_honouring_retry_after() -> None:
    answers = [
        ark_error(429, "RateLimitExceeded.EndpointRPMExceeded", {"Retry-After": "0"}),
        ark_error(503, "ServerOverloaded"),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json={"id": "cgt-3"})

    assert await client_for(handler).submit(CREATE) == "cgt-3"


async def test_quota_exhaustion_is_not_retried() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return ark_error(429, "SetLimitExceeded")

    with pytest.raises(RateLimited) as caught:
        await client_for(handler).submit(CREATE)
    assert calls == 1 and caught.value.code == "SetLimitExceeded"


async def test_status_polls_retry_transient_failures_within_bounds() -> None:
    answers: list[httpx.Response | Exception] = [
        httpx.ReadTimeout("slow"),
        ark_error(502, "BadGateway"),
        ark_error(429, "RateLimitExceeded.EndpointRPMExceeded", {"Retry-After": "0.001"}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if answers:
            answer = answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        return httpx.Response(200, json={"id": "cgt-4", "status": "running"})

    snapshot = await client_for(handler).fetch("cgt-4", "1.5-pro")
    assert snapshot.status == "running"


async def test_status_polls_give_up_after_the_attempt_bound() -> None:
    calls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(ProviderUnreachable):
        await client_for(handler).fetch("cgt-5", "1.5-pro")
    assert calls == FAST.attempts


async def test_a_404_is_not_retried_and_keeps_the_providers_code() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return ark_error(404, "InvalidEndpointOrModel.NotFound")

    with pytest.raises(ProviderError) as caught:
        await client_for(handler).submit(CREATE)
    assert caught.value.code == "InvalidEndpointOrModel.NotFound"
    assert caught.value.request_id == "req-404"


def test_retry_after_in_both_forms() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("soon") is None
    assert RetryPolicy(max_retry_after=60).delay(0, 500) == 60


# What the one retry loop sends again, by kind of request: (first failure, sent again?, what a refusal becomes).
# A create is sent again only when the provider provably did not take it; a read after anything transient.
_CONNECT = httpx.ConnectError("refused")
_READ_CUT = httpx.ReadError("connection reset")
_GARBLED = httpx.RemoteProtocolError("peer closed")
CREATE_RULES: list[tuple[httpx.Response | Exception, type[Exception] | None]] = [
    (_CONNECT, None),
    (httpx.PoolTimeout("no connection"), None),
    (_READ_CUT, CreateAnswerLost),
    (_GARBLED, CreateAnswerLost),
    (ark_error(429, "RateLimitExceeded.EndpointRPMExceeded"), None),
    (ark_error(429, "QuotaExceeded"), RateLimited),
    (ark_error(503, "ServerOverloaded"), None),
    (ark_error(502, "ServerOverloaded"), CreateAnswerLost),  # an ambiguous status beats an overload code
    (ark_error(500, "InternalServiceError"), CreateAnswerLost),
    (ark_error(504, "GatewayTimeout"), CreateAnswerLost),
    (ark_error(409, "Conflict"), ProviderError),
    (ark_error(400, "InvalidParameter"), ProviderError),
]
READ_RULES: list[tuple[httpx.Response | Exception, type[Exception] | None]] = [
    (_CONNECT, None),
    (_READ_CUT, None),
    (_GARBLED, None),
    *[(ark_error(status, "Transient"), None) for status in (408, 409, 429, 500, 502, 503, 504)],
    (ark_error(429, "QuotaExceeded"), RateLimited),
    (ark_error(400, "InvalidParameter"), ProviderError),
    (ark_error(401, "AuthenticationError"), AuthenticationFailed),
    (ark_error(404, "NotFound"), ProviderError),
]


def _first_then_success(
    first: httpx.Response | Exception, success: httpx.Response
) -> tuple[list[int], Callable[[httpx.Request], httpx.Response]]:
    calls = [0]

    def handler(request: httpx.Request) -> httpx.Response:
        calls[0] += 1
        if calls[0] > 1:
            return success
        if isinstance(first, Exception):
            raise first
        return first

    return calls, handler


@pytest.mark.parametrize(("first", "refused_as"), CREATE_RULES)
async def test_the_create_rules_of_the_one_retry_loop(
    first: httpx.Response | Exception, refused_as: type[Exception] | None
) -> None:
    calls, handler = _first_then_success(first, httpx.Response(200, json={"id": "cgt-1"}))
    client = client_for(handler)
    if refused_as is None:
        assert await client.submit(CREATE) == "cgt-1"
        assert calls[0] == 2
    else:
        with pytest.raises(refused_as):
            await client.submit(CREATE)
        assert calls[0] == 1, "a create that may have been taken, or was refused for good, is never sent again"


@pytest.mark.parametrize(("first", "refused_as"), READ_RULES)
async def test_the_read_rules_of_the_one_retry_loop(
    first: httpx.Response | Exception, refused_as: type[Exception] | None
) -> None:
    calls, handler = _first_then_success(first, httpx.Response(200, json={"items": []}))
    client = client_for(handler)
    read = HttpRequest(method="GET", url=f"{BASE}/contents/generations/tasks/cgt-1")
    if refused_as is None:
        assert (await client._read(read)).json() == {"items": []}
        assert calls[0] == 2
    else:
        with pytest.raises(refused_as):
            await client._read(read)
        assert calls[0] == 1
