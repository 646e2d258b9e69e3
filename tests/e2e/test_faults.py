"""The fault matrix: every misbehaviour of the provider, through the real server, with zero lost and zero
duplicated jobs, nothing leaked, and a server that keeps answering."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

# (route, kind, times, extra fault fields, what the job ends as, creates the provider saw)
MATRIX: list[tuple[str, str, int, dict[str, Any], str, int]] = [
    ("create", "http_429", 2, {"retry_after": 0.05}, "succeeded", 1),
    ("create", "http_503", 1, {}, "succeeded", 1),
    # The answer is lost: the task is found in the provider's list and adopted, or the job is known not created.
    ("create", "http_500", 1, {}, "failed", 0),
    ("create", "drop_before", 1, {}, "failed", 0),
    ("create", "drop_after", 1, {}, "succeeded", 1),
    ("create", "malformed", 1, {}, "failed", 0),
    ("create", "slow", 1, {"delay": 2.0}, "succeeded", 1),
    ("status", "http_429", 3, {"retry_after": 0.05}, "succeeded", 1),
    ("status", "http_500", 2, {}, "succeeded", 1),
    ("status", "http_503", 2, {}, "succeeded", 1),
    ("status", "drop_before", 2, {}, "succeeded", 1),
    ("status", "slow", 1, {"delay": 2.0}, "succeeded", 1),
    ("status", "malformed", 1, {}, "succeeded", 1),
    ("download", "http_500", 2, {}, "succeeded", 1),
    ("download", "expired_url", 1, {}, "succeeded", 1),
    ("download", "drop_before", 1, {}, "succeeded", 1),
]


async def newest_job(client: Client) -> dict[str, Any]:
    return ((await client.call_tool("list_tasks", {"limit": 1, "detail": True})).structured_content or {})["tasks"][0]


async def settled_job(client: Client, texts: list[str]) -> dict[str, Any]:
    """The job of the last call once it is settled: found or given up on, finished, saved."""
    while True:
        listed = await client.call_tool("list_tasks", {"limit": 1, "detail": True})
        job = (listed.structured_content or {})["tasks"][0]
        if job["status"] == "unknown":
            await anyio.sleep(0.05)  # the server is still looking for its task in the provider's list
            continue
        if job["status"] in ("failed", "cancelled", "expired") or job.get("video_path"):
            return job
        final = await client.call_tool("get_task_status", {"task_id": job["task_id"], "wait": True})
        texts.append(text_of(final))
        if not final.is_error:
            return final.structured_content or {}


async def add_fault(sandbox: SandboxServer, **fault: Any) -> None:
    async with httpx.AsyncClient() as client:
        await client.post(f"{sandbox.url}/_sandbox/faults", json={"faults": [fault]})


@pytest.mark.parametrize(("route", "kind", "times", "extra", "ends_as", "creates"), MATRIX)
async def test_fault(
    route: str,
    kind: str,
    times: int,
    extra: dict[str, Any],
    ends_as: str,
    creates: int,
    tmp_path: Path,
    sandbox: SandboxServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(
        tmp_path,
        provider="ark",
        base_url=f"{sandbox.url}/api/v3",
        api_key=SECRET_KEY,
        http_timeout=1.0,
        reconcile_delays=(0.1, 0.3, 0.6),
        reconcile_window=0.5,
    )
    await add_fault(sandbox, route=route, kind=kind, times=times, **extra)
    texts: list[str] = []
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            result = await client.call_tool("generate_video", {"prompt": f"fault {route} {kind}"})
            texts.append(text_of(result))
            job = await settled_job(client, texts)
            alive = await client.call_tool("list_models", {})
            again = await client.call_tool("generate_video", {"prompt": f"fault {route} {kind}"})
            texts.append(text_of(again))
    assert job["status"] == ends_as, texts
    assert alive.is_error is False
    stats = await sandbox_stats(sandbox)
    if ends_as == "succeeded":
        assert Path(job["video_path"]).read_bytes()[4:8] == b"ftyp"
        assert (again.structured_content or {})["reused_existing"] is True  # a retry does not pay again
        assert stats["creates"] == creates
    else:
        assert job["error_code"] == "NotCreated" and "safe" in job["error_message"]
        assert "get_task_status" in texts[0] and "force_new=true" in texts[0]
        assert stats["creates"] == creates + 1  # known not created, so the retry goes through
    videos = list(settings.output_dir.glob("*.mp4")) if settings.output_dir.exists() else []
    assert len(videos) == 1  # the job's video, or (when it was known not created) the retry's: never two
    logged = "\n".join(record.getMessage() for record in caplog.records)
    journal = (settings.state_dir / "jobs.sqlite3").read_bytes()
    assert SECRET_KEY not in "\n".join(texts) + logged
    assert SECRET_KEY.encode() not in journal


async def test_an_unknown_status_word_fails_the_wait_with_a_quote_and_the_job_goes_on(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    await add_fault(sandbox, route="status", kind="bad_status", times=1)
    async with Client(create_app(settings)) as client:
        first = await client.call_tool("generate_video", {"prompt": "odd status"})
        listed = await client.call_tool("list_tasks", {})
        handle = (listed.structured_content or {})["tasks"][0]["task_id"]
        final = await client.call_tool("get_task_status", {"task_id": handle, "wait": True})
    assert first.is_error is True
    assert "levitating" in text_of(first) and "get_task_status" in text_of(first)
    assert (final.structured_content or {})["status"] == "succeeded"


async def test_without_a_task_list_a_lost_create_stays_unknown_and_a_retry_is_held_back(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """gpt.ge lists no tasks: the job stays `unknown`, the agent is told to check, an identical call is refused."""
    settings = make_settings(
        tmp_path, provider="gptge", base_url=sandbox.url, api_key=SECRET_KEY, reconcile_delays=(0.05,)
    )
    await add_fault(sandbox, route="create", kind="drop_after", times=1)
    async with Client(create_app(settings)) as client:
        first = await client.call_tool("generate_video", {"prompt": "lost on gpt.ge"})
        with anyio.fail_after(10):  # until the server has given up looking (it says to check the console)
            while "console" not in ((job := await newest_job(client))["error_message"] or ""):
                await anyio.sleep(0.05)
        retry = await client.call_tool("generate_video", {"prompt": "lost on gpt.ge"})
    assert first.is_error is True and "provider's own task list" in text_of(first)
    assert job["status"] == "unknown"
    assert retry.is_error is True and "force_new=true" in text_of(retry)
    assert (await sandbox_stats(sandbox))["creates"] == 1
