"""Attacks on storyboard plans end to end (real MCP client, loopback sandbox), found in review. Each test shows a
defect (each was marked xfail(strict) until it was fixed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.journal.sqlite import SqliteTaskStore
from seedance_mcp.sandbox.server import SandboxServer
from tests.conftest import make_settings, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

SECRET_KEY = "sk-storyboard-review-key-0123456789"
MODEL = "doubao-seedance-1-5-pro-251215"


async def test_a_plan_whose_film_cannot_be_joined_stops_and_says_so(tmp_path: Path, sandbox: SandboxServer) -> None:
    """Both shots are saved, but the film cannot be written (its path is taken by a directory: any lasting join
    failure, a full disk, a shot file removed). The plan must leave `running` (it holds a lease forever otherwise,
    and each claim re-encodes the film) and get_task_status must answer it as failed, not as an error."""
    settings = make_settings(
        tmp_path,
        provider="ark",
        base_url=f"{sandbox.url}/api/v3",
        api_key=SECRET_KEY,
        wait_seconds=30.0,
        claim_interval=0.2,
    )
    plan: dict[str, Any] = {
        "model": MODEL,
        "shots": [{"prompt": "a red kite rises", "duration": 4}, {"prompt": "the kite dives", "duration": 4}],
    }
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            dry = await client.call_tool("storyboard", {**plan, "dry_run": True})
            plan_id = str((dry.structured_content or {})["plan_id"])
            (settings.output_dir / f"{plan_id}.mp4").mkdir(parents=True)
            made = await client.call_tool("storyboard", plan)
            assert text_of(made)  # an error or not, it says something
            status = await client.call_tool("get_task_status", {"task_id": plan_id})
        assert (await sandbox_stats(sandbox))["creates"] == 2
        store = await SqliteTaskStore.open(settings.state_dir / "jobs.sqlite3")
        try:
            record = await store.get_plan(plan_id)
        finally:
            await store.close()
    assert record is not None and record.state != "running", record
    assert not status.is_error and (status.structured_content or {}).get("status") == "failed", text_of(status)


async def test_a_shot_rendering_past_the_runs_bound_leaves_the_plan_running_to_its_end(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """_run_to_end promises that a shot still rendering past the bound leaves the plan running (the lease goes back
    and a worker takes it up again). Shot 1 renders 10 s against a 4 s bound (wait_seconds=0.04): the plan must go on
    by itself to shot 2 and the film, never answer `failed`."""
    settings = make_settings(
        tmp_path,
        provider="ark",
        base_url=f"{sandbox.url}/api/v3",
        api_key=SECRET_KEY,
        wait_seconds=0.04,
        claim_interval=0.2,
    )
    plan: dict[str, Any] = {
        "model": MODEL,
        "shots": [
            {"prompt": "a slow dawn [[render=10]]", "duration": 4},
            {"prompt": "bright noon", "duration": 4, "transition": "continuous"},
        ],
    }
    seen: list[str] = []
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            first = await client.call_tool("storyboard", plan)
            plan_id = str((first.structured_content or {})["plan_id"])
            while True:
                status = await client.call_tool("get_task_status", {"task_id": plan_id})
                data: dict[str, Any] = status.structured_content or {}
                seen.append(str(data.get("status")))
                if data.get("status") != "running":
                    break
                await anyio.sleep(0.2)
    assert data.get("status") == "succeeded", (seen[-3:], text_of(status))
    assert (await sandbox_stats(sandbox))["creates"] == 2


async def test_asking_a_done_plans_status_does_not_join_its_film_again(tmp_path: Path, sandbox: SandboxServer) -> None:
    """The film is joined once, when the plan ends; get_task_status (free, "nothing is sent") and a repeated
    storyboard call then read it, they do not write it again (its inode and mtime stay)."""
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, wait_seconds=30.0
    )
    plan: dict[str, Any] = {
        "model": MODEL,
        "shots": [{"prompt": "a red kite rises", "duration": 4}, {"prompt": "the kite dives", "duration": 4}],
    }
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            made = await client.call_tool("storyboard", plan)
            data: dict[str, Any] = made.structured_content or {}
            assert data.get("status") == "succeeded", text_of(made)
            film = Path(str(data["film_path"]))
            before = film.stat()
            status = await client.call_tool("get_task_status", {"task_id": str(data["plan_id"])})
            assert (status.structured_content or {}).get("film_path") == str(film), text_of(status)
    after = film.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


async def test_calling_a_done_plan_again_asks_no_approval_for_money_already_spent(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    """With SEEDANCE_CONFIRM_ABOVE, the plan is approved once and made; calling storyboard again with the same
    arguments (as the README says, to get the film) pays nothing and must not ask the person to approve it again."""
    settings = make_settings(
        tmp_path,
        provider="ark",
        base_url=f"{sandbox.url}/api/v3",
        api_key=SECRET_KEY,
        wait_seconds=30.0,
        confirm_above=0.01,
    )
    plan: dict[str, Any] = {
        "model": MODEL,
        "shots": [{"prompt": "a red kite rises", "duration": 4}, {"prompt": "the kite dives", "duration": 4}],
    }
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            asked = await client.call_tool("storyboard", plan)
            assert asked.is_error and 'approval_id="' in text_of(asked), text_of(asked)
            approval_id = text_of(asked).split('approval_id="', 1)[1].split('"', 1)[0]
            made = await client.call_tool("storyboard", {**plan, "approval_id": approval_id})
            assert (made.structured_content or {}).get("status") == "succeeded", text_of(made)
            again = await client.call_tool("storyboard", plan)
    assert (await sandbox_stats(sandbox))["creates"] == 2
    assert not again.is_error and (again.structured_content or {}).get("status") == "succeeded", text_of(again)


async def test_cancel_task_of_a_done_plan_does_not_call_it_cancelled(tmp_path: Path, sandbox: SandboxServer) -> None:
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, wait_seconds=30.0
    )
    plan: dict[str, Any] = {"model": MODEL, "shots": [{"prompt": "a red kite rises", "duration": 4}]}
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            made = await client.call_tool("storyboard", plan)
            data: dict[str, Any] = made.structured_content or {}
            assert data.get("status") == "succeeded", text_of(made)
            answer = await client.call_tool("cancel_task", {"task_id": str(data["plan_id"])})
            status = await client.call_tool("get_task_status", {"task_id": str(data["plan_id"])})
    cancelled: dict[str, Any] = answer.structured_content or {}
    assert cancelled.get("cancelled") is False and "done" in text_of(answer), text_of(answer)
    assert (status.structured_content or {}).get("status") == "succeeded", text_of(status)
    assert cancelled.get("status") != "cancelled", cancelled


async def test_two_identical_cut_shots_are_two_videos(tmp_path: Path, sandbox: SandboxServer) -> None:
    """A plan quoted, approved and reserved for two shots makes two videos, as takes of one request do."""
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, wait_seconds=30.0
    )
    shot = {"prompt": "waves break on the rocks", "duration": 4, "transition": "cut"}
    with anyio.fail_after(60):
        async with Client(create_app(settings)) as client:
            made = await client.call_tool("storyboard", {"model": MODEL, "shots": [shot, shot]})
    data: dict[str, Any] = made.structured_content or {}
    assert data.get("status") == "succeeded", text_of(made)
    assert (await sandbox_stats(sandbox))["creates"] == 2
    assert len({s["task_id"] for s in data["shots"]}) == 2, data["shots"]
