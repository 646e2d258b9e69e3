"""The API key never leaks, whole or in pieces: a provider that echoes it back (in an error code, a request-id
header, a create answer without an id, a task's error message, a status word, a reason phrase, a body cut by
trimming) gets it into no exception, snapshot, tool result, log record or journal byte. Real HTTP on 127.0.0.1."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import CreateAnswerLost, ProviderError, UnexpectedResponse, redact
from seedance_mcp.logs import RedactSecrets
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._http import RetryPolicy
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import HttpRequest
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import running_fake_ark
from tests.fakes.tiny_http import Handler, Seen, TinyServer, answer, serving

pytestmark = pytest.mark.anyio

FAST = RetryPolicy(attempts=2, timeout=5, base_delay=0.001, max_delay=0.002, max_retry_after=0.01)
FRAGMENTS = [SECRET_KEY[i : i + 8] for i in range(len(SECRET_KEY) - 7)]


def leaks(text: str) -> list[str]:
    """Every 8-character piece of the key found in `text`."""
    return [fragment for fragment in FRAGMENTS if fragment in text]


def leaks_in_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Pieces of the key in any record, as captured (our own loggers) and after the stderr filter (all loggers).

    httpcore's DEBUG trace prints raw response headers; `configure_logging` keeps it at WARNING and the filter
    scrubs whatever still gets through, which is what the second half checks.
    """
    ours = [r for r in caplog.records if not r.name.startswith(("httpcore", "httpx"))]
    raw = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in ours)
    scrub = RedactSecrets([SECRET_KEY])
    formatter = logging.Formatter("%(name)s %(message)s")
    filtered = "\n".join(formatter.format(r) for r in caplog.records if scrub.filter(r))
    return leaks(raw) + leaks(filtered)


def everything_about(exc: BaseException) -> str:
    """An exception as anyone could see it: message, repr, attributes and the whole formatted chain."""
    parts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    current: BaseException | None = exc
    while current is not None:
        parts += [repr(value) for value in vars(current).values()]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@asynccontextmanager
async def ark_at(handler: Handler) -> AsyncGenerator[tuple[ProviderClient, TinyServer]]:
    async with serving(handler) as server, httpx.AsyncClient() as http:
        yield (
            ProviderClient(
                preset=PRESETS["ark"],
                dialect=dialect_for("ark"),
                base_url=f"{server.url}/api/v3",
                api_key=SECRET_KEY,
                http=http,
                retry=FAST,
            ),
            server,
        )


def create_of(client: ProviderClient) -> HttpRequest:
    return HttpRequest(
        method="POST", url=f"{client.base_url}/contents/generations/tasks", json_body={"model": "m", "content": []}
    )


def echo(build: Callable[[str], bytes]) -> Handler:
    """A handler that answers with whatever `build` makes of the bearer key it was sent."""
    return lambda seen: build(seen.bearer)


def failed_task(key: str) -> bytes:
    error = {"code": "OutputVideoSensitiveContentDetected", "message": "x" * 290 + key}
    return answer(200, {"id": "cgt-1", "status": "failed", "error": error})


Call = Callable[[ProviderClient], Awaitable[Any]]


async def submit(client: ProviderClient) -> Any:
    return await client.submit(create_of(client))


async def fetch(client: ProviderClient) -> Any:
    return await client.fetch("cgt-1", "1.5-pro")


# (what the provider echoes, how it answers, what we call, what comes out)
CASES: list[tuple[str, Handler, Call, type[BaseException] | None]] = [
    (
        "error_code",
        echo(lambda key: answer(400, {"error": {"code": key, "message": "refused"}})),
        submit,
        ProviderError,
    ),
    (
        "request_id",
        echo(lambda key: answer(400, {"error": {"code": "Bad"}}, headers={"X-Request-Id": key})),
        submit,
        ProviderError,
    ),
    ("create_without_id", echo(lambda key: answer(200, {"message": key})), submit, CreateAnswerLost),
    ("task_error", echo(failed_task), fetch, None),
    ("bad_status", echo(lambda key: answer(200, {"id": "cgt-1", "status": key})), fetch, UnexpectedResponse),
    ("trimmed_error", echo(lambda key: answer(400, "y" * 495 + key, content_type="text/plain")), fetch, ProviderError),
    (
        "trimmed_not_json",
        echo(lambda key: answer(200, "z" * 295 + key, content_type="text/plain")),
        fetch,
        UnexpectedResponse,
    ),
    (
        "json_escaped",
        echo(lambda key: answer(400, {"error": {"message": key.replace("-", "\\u002d")}})),
        fetch,
        ProviderError,
    ),
]


@pytest.mark.parametrize(("where", "handler", "call", "raises"), CASES, ids=[case[0] for case in CASES])
async def test_an_echoed_key_reaches_no_error_and_no_snapshot(
    where: str,
    handler: Handler,
    call: Call,
    raises: type[BaseException] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever place the provider echoes the key in, what comes out of the client holds no piece of it."""
    caplog.set_level(logging.DEBUG)
    async with ark_at(handler) as (client, server):
        if raises is None:
            seen = (await call(client)).model_dump_json()
        else:
            with pytest.raises(raises) as caught:
                await call(client)
            seen = everything_about(caught.value)
        assert server.seen[0].bearer == SECRET_KEY  # the key did go out, and came back
    assert leaks(seen) == [] and leaks_in_logs(caplog) == [], where
    if where == "task_error":
        assert '"x' in seen and "***" in seen  # the message is kept, only the key is gone


async def test_a_key_in_the_reason_phrase_is_not_quoted() -> None:
    """An empty error body falls back on the reason phrase; a key in it is scrubbed too."""

    def handler(seen: Seen) -> bytes:
        return answer(400).replace(b"Whatever", f"Bad {seen.bearer}".encode())

    async with ark_at(handler) as (client, _server):
        with pytest.raises(ProviderError) as caught:
            await submit(client)
    assert leaks(everything_about(caught.value)) == []


def test_redact_removes_fragments_before_trimming_could_make_them() -> None:
    """A key cut short is still removed; text around it is kept."""
    assert redact(f"see {SECRET_KEY[:14]}… here", SECRET_KEY) == "see ***… here"
    assert redact(f"a {SECRET_KEY} b {SECRET_KEY[9:25]} c", SECRET_KEY) == "a *** b *** c"
    assert redact("nothing secret", SECRET_KEY) == "nothing secret"


def test_the_log_filter_removes_fragments_from_messages_and_tracebacks() -> None:
    """`RedactSecrets` catches a trimmed key in arguments and in a formatted exception chain."""
    try:
        try:
            raise ValueError(f"provider said {SECRET_KEY}")
        except ValueError as inner:
            raise RuntimeError(f"trimmed: {SECRET_KEY[:16]}…") from inner
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed: %s", (SECRET_KEY[3:20],), exc_info)
    handler_filter = RedactSecrets([SECRET_KEY])
    assert handler_filter.filter(record)
    formatted = logging.Formatter("%(message)s").format(record)
    assert leaks(formatted) == [] and "RuntimeError" in formatted and "ValueError" in formatted


# -- through the whole server, against the socket-level fake Ark ---------------------------------------------------


async def settle(client: Client, texts: list[str]) -> dict[str, Any]:
    """The last job once it has settled (finished and saved, or failed), collecting every text shown."""
    while True:
        listed = await client.call_tool("list_tasks", {"limit": 1, "detail": True})
        texts.append(text_of(listed))
        job = (listed.structured_content or {})["tasks"][0]
        if job["status"] in ("failed", "cancelled", "expired") or job.get("video_path"):
            return job
        final = await client.call_tool("get_task_status", {"task_id": job["task_id"], "wait": True})
        texts.append(text_of(final) + repr(final.structured_content))
        if not final.is_error and (final.structured_content or {}).get("status") in ("failed", "succeeded"):
            return final.structured_content or {}
        await anyio.sleep(0.05)


@pytest.mark.parametrize(
    ("route", "where", "ends_as"),
    [("status", "task_error", "failed"), ("status", "bad_status", "succeeded"), ("create", "request_id", "succeeded")],
)
async def test_an_echoed_key_reaches_no_tool_result_log_or_journal(
    route: str, where: str, ends_as: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """End to end: the server's answers, its logs and its journal files never hold a piece of the key."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    async with running_fake_ark(render_seconds=0.2, required_key=SECRET_KEY) as fake:
        # A failed task stays failed on every read, by itself or in a list; the others go back to normal.
        times = -1 if where == "task_error" else 1
        for each in (route, "list") if route == "status" else (route,):
            fake.add_fault(each, "echo_key", times=times, where=where)
        settings = make_settings(tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY)
        with anyio.fail_after(20):
            async with Client(create_app(settings)) as client:
                first = await client.call_tool("generate_video", {"prompt": f"echo the key in {where}"})
                texts.append(text_of(first) + repr(first.structured_content))
                job = await settle(client, texts)
        assert any(SECRET_KEY in r.headers.get("authorization", "") for r in fake.requests)
        assert times == -1 or len(fake.faults) < (2 if route == "status" else 1)  # the key was echoed
    assert job["status"] == ends_as, texts
    assert leaks("\n".join(texts)) == [] and leaks_in_logs(caplog) == []
    journal = b"".join(path.read_bytes() for path in settings.state_dir.iterdir() if path.is_file())
    assert [f for f in FRAGMENTS if f.encode() in journal] == []
