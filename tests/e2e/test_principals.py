"""Each person's jobs are their own: principals from bearer tokens, over the real `serve --http` server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from seedance_mcp.principals import load_principals, token_hash
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, free_port_for_tests, sandbox_requests, sandbox_stats, text_of
from tests.fakes.stdio_helpers import server_env

pytestmark = pytest.mark.anyio

ALICE, BOB = "alice-token-0123456789abcdef", "bob-token-0123456789abcdef"


def tokens_file(tmp_path: Path, name: str = "tokens.json", **extra: dict[str, Any]) -> Path:
    path = tmp_path / name
    entries = {"alice": {"token_sha256": token_hash(ALICE)}, "bob": {"token_sha256": token_hash(BOB)}}
    for name, fields in extra.items():
        entries[name].update(fields)
    path.write_text(json.dumps(entries))
    return path


@asynccontextmanager
async def http_server(tmp_path: Path, sandbox: SandboxServer, **env: str) -> AsyncGenerator[str]:
    """`serve --http` on the sandbox with alice's and bob's tokens (`env` may name another SEEDANCE_TOKENS_FILE)."""
    port = free_port_for_tests()
    variables = {
        "SEEDANCE_PROVIDER": "ark",
        "SEEDANCE_BASE_URL": f"{sandbox.url}/api/v3",
        "SEEDANCE_API_KEY": SECRET_KEY,
        "SEEDANCE_TOKENS_FILE": str(tokens_file(tmp_path)),
        **env,
    }
    environment = server_env(tmp_path, **variables)
    log = (tmp_path / "server.log").open("wb")
    process = await anyio.open_process(
        [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        with anyio.fail_after(20):
            while True:
                try:
                    async with httpx.AsyncClient() as probe:
                        await probe.get(url)
                    break
                except httpx.TransportError:
                    await anyio.sleep(0.1)
        yield url
    finally:
        process.terminate()
        with anyio.move_on_after(10):
            await process.wait()
        (tmp_path / "server.exit").write_text(str(process.returncode))
        log.close()


@asynccontextmanager
async def as_person(url: str, token: str) -> AsyncGenerator[Client]:
    """An MCP client sending this person's token; its HTTP client is closed with it."""
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@pytest.mark.subprocess
async def test_principals_cannot_see_or_cancel_each_others_tasks(tmp_path: Path, sandbox: SandboxServer) -> None:
    sandbox.state.render_seconds = 1.0
    async with http_server(tmp_path, sandbox) as url:
        with anyio.fail_after(60):
            async with as_person(url, ALICE) as alice:
                made = await alice.call_tool("generate_video", {"prompt": "alice's kite [[queue=20]]", "wait": False})
                handle = (made.structured_content or {})["task_id"]
                async with as_person(url, BOB) as bob:
                    peek = await bob.call_tool("get_task_status", {"task_id": handle})
                    cancel = await bob.call_tool("cancel_task", {"task_id": handle})
                    listed = (await bob.call_tool("list_tasks", {})).structured_content or {}
                    same = await bob.call_tool("generate_video", {"prompt": "alice's kite [[queue=20]]", "wait": False})
                own = (await alice.call_tool("list_tasks", {})).structured_content or {}
                mine = await alice.call_tool("get_task_status", {"task_id": handle})
    assert peek.is_error and "No task" in text_of(peek) and "alice" not in text_of(peek).replace(handle, "")
    assert cancel.is_error and "No task" in text_of(cancel)
    assert not listed["more"] and listed["tasks"] == []
    # The same call by another person is that person's own job, never a reuse of someone else's.
    assert "reused_existing" not in (same.structured_content or {})
    assert (same.structured_content or {})["task_id"] != handle
    assert (
        len(own["tasks"]) == 1
        and not own["more"]
        and (mine.structured_content or {})["status"] in ("queued", "running")
    )
    assert (await sandbox_stats(sandbox))["creates"] == 2


@pytest.mark.subprocess
async def test_an_unknown_token_is_refused(tmp_path: Path, sandbox: SandboxServer) -> None:
    async with http_server(tmp_path, sandbox) as url, httpx.AsyncClient() as client:
        answer = await client.post(url, headers={"Authorization": "Bearer nobody-0123456789"}, json={})
    assert answer.status_code == 401


def test_a_tokens_file_keeps_hashes_and_per_person_limits(tmp_path: Path) -> None:
    principals = load_principals(tokens_file(tmp_path, alice={"daily_budget": 12.5}))
    assert principals["alice"].daily_budget == 12.5 and principals["bob"].daily_budget is None
    assert ALICE not in (tmp_path / "tokens.json").read_text()
    (tmp_path / "bad.json").write_text(json.dumps({"eve": {"token": "plain"}}))
    with pytest.raises(ValueError, match="eve"):
        load_principals(tmp_path / "bad.json")


@pytest.mark.subprocess
async def test_health_and_readiness_answer_without_a_token_and_metrics_only_with_one(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Load balancers reach /healthz and /readyz; /metrics (team-wide counts) needs a token /mcp accepts, and
    shows counts, never a person, a secret or a token."""
    async with http_server(tmp_path, sandbox) as url:
        base = url.removesuffix("/mcp")
        async with as_person(url, ALICE) as alice:
            await alice.call_tool("generate_video", {"prompt": "counted", "model": "2.0"})
        async with httpx.AsyncClient() as client:
            health = await client.get(f"{base}/healthz")
            ready = await client.get(f"{base}/readyz")
            anonymous = await client.get(f"{base}/metrics")
            wrong = await client.get(f"{base}/metrics", headers={"Authorization": "Bearer nobody-0123456789"})
            scraped = await client.get(f"{base}/metrics", headers={"Authorization": f"Bearer {BOB}"})
    assert health.status_code == 200 and ready.status_code == 200 and ready.json()["ready"] is True
    assert anonymous.status_code == 401 and wrong.status_code == 401
    assert "seedance_jobs" not in anonymous.text + wrong.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    text = scraped.text
    assert scraped.status_code == 200
    assert 'seedance_provider_requests_total{kind="create",status="200"} 1.0' in text
    assert 'seedance_jobs{state="succeeded"} 1.0' in text and "seedance_download_seconds_count 1.0" in text
    assert 'seedance_spend_today{currency="CNY"}' in text
    assert SECRET_KEY not in text and ALICE not in text and BOB not in text
    assert "alice" not in text and "bob" not in text and "principal" not in text


@pytest.mark.subprocess
async def test_a_separate_metrics_address_serves_metrics_alone_without_a_token(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """SEEDANCE_METRICS_ADDRESS: a listener of its own (a private interface, for a scraper) with /metrics only;
    the MCP port still wants a token for it, and the server stops on SIGTERM with both."""
    metrics_port = free_port_for_tests()
    async with http_server(tmp_path, sandbox, SEEDANCE_METRICS_ADDRESS=f"127.0.0.1:{metrics_port}") as url:
        base = url.removesuffix("/mcp")
        async with httpx.AsyncClient() as client:
            scraped = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
            no_mcp = await client.post(f"http://127.0.0.1:{metrics_port}/mcp", json={})
            main = await client.get(f"{base}/metrics")
    assert scraped.status_code == 200 and "seedance_jobs" in scraped.text
    assert no_mcp.status_code == 404 and main.status_code == 401
    assert f"metrics at http://127.0.0.1:{metrics_port}/metrics" in (tmp_path / "server.log").read_text()
    assert (tmp_path / "server.exit").read_text() in ("0", "-15"), "still running 10 s after SIGTERM"


@pytest.mark.subprocess
async def test_another_persons_draft_cannot_be_finalised_and_nothing_is_sent(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """Bob naming alice's 1.5 pro draft (by task id or job id) is told there is no such task; alice finalises it,
    by either id (a job id is sent as its task id)."""
    async with http_server(tmp_path, sandbox) as url:
        with anyio.fail_after(60):
            async with as_person(url, ALICE) as alice, as_person(url, BOB) as bob:
                draft = await alice.call_tool(
                    "generate_video", {"prompt": "a lighthouse", "model": "1.5-pro", "draft": True}
                )
                made = draft.structured_content or {}
                assert made["status"] == "succeeded", text_of(draft)
                refused = [
                    await bob.call_tool(
                        "generate_video", {"prompt": "final cut", "model": "1.5-pro", "draft_task_id": key, **extra}
                    )
                    for key in (made["task_id"], made["job_id"])
                    for extra in ({}, {"dry_run": True})
                ]
                creates_after_bob = (await sandbox_stats(sandbox))["creates"]
                own = await alice.call_tool(
                    "generate_video", {"prompt": "final cut", "model": "1.5-pro", "draft_task_id": made["job_id"]}
                )
    for result in refused:
        assert result.is_error and "draft_task_id" in text_of(result), text_of(result)
        assert "no task" in text_of(result) and "Nothing was sent" in text_of(result)
        assert "alice" not in text_of(result)
    assert creates_after_bob == 1
    assert own.is_error is False and (own.structured_content or {})["status"] == "succeeded", text_of(own)
    body = (await sandbox_requests(sandbox))[-1]["body"]
    assert body["content"] == [{"type": "draft_task", "draft_task": {"id": made["task_id"]}}]


# 2.0 at 720p 16:9 for 5 s: 108,900 tokens at 46 CNY per million = 5.0094 CNY (tests/e2e/test_spending.py).
VIDEO = {"model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5, "wait": False}
VIDEO_COST = 108900 * 46 / 1e6


@pytest.mark.subprocess
async def test_a_persons_budget_in_the_tokens_file_overrides_the_per_person_budget(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """SEEDANCE_DAILY_BUDGET_PER_PERSON allows 1.5 videos a day, alice's own entry 2.5: she makes two, bob one."""
    tokens = tokens_file(tmp_path, "budgets.json", alice={"daily_budget": VIDEO_COST * 2.5})
    made: dict[str, int] = {"alice": 0, "bob": 0}
    refusals: list[str] = []
    async with http_server(
        tmp_path, sandbox, SEEDANCE_TOKENS_FILE=str(tokens), SEEDANCE_DAILY_BUDGET_PER_PERSON=str(VIDEO_COST * 1.5)
    ) as url:
        with anyio.fail_after(60):
            for name, token in (("alice", ALICE), ("bob", BOB)):
                async with as_person(url, token) as person:
                    for index in range(3):
                        result = await person.call_tool("generate_video", {**VIDEO, "prompt": f"{name} {index}"})
                        if result.is_error:
                            refusals.append(text_of(result))
                        else:
                            made[name] += 1
                    spend = ((await person.call_tool("list_tasks", {})).structured_content or {})["spend"]
                    assert spend["daily_budget"] == pytest.approx(VIDEO_COST * (2.5 if name == "alice" else 1.5))
                    assert spend["today"] == pytest.approx(VIDEO_COST * made[name], abs=1e-3)
    assert made == {"alice": 2, "bob": 1}
    assert ["the daily budget of alice (SEEDANCE_TOKENS_FILE)" in text for text in refusals] == [True, False, False]
    assert all("SEEDANCE_DAILY_BUDGET_PER_PERSON" in text for text in refusals[1:])
    assert (await sandbox_stats(sandbox))["creates"] == 3
