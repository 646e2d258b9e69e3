"""Never lose a paid job: SIGKILL the server mid-render, start it again, and every video lands exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from mcp import Client

from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, sandbox_stats
from tests.fakes.stdio_helpers import server_env, server_pids, stdio_params

pytestmark = pytest.mark.anyio


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find the server process")
@pytest.mark.subprocess
async def test_sigkill_while_jobs_are_queued_and_running_loses_nothing(tmp_path: Path, sandbox: SandboxServer) -> None:
    sandbox.state.render_seconds = 600.0  # every render lasts until the test lets it end
    env = server_env(
        tmp_path,
        SEEDANCE_PROVIDER="ark",
        SEEDANCE_BASE_URL=f"{sandbox.url}/api/v3",
        SEEDANCE_API_KEY=SECRET_KEY,
        SEEDANCE_POLL_INTERVAL="0.5",
    )
    marker = str(tmp_path / "state")
    videos = tmp_path / "videos"
    with anyio.fail_after(60):
        async with Client(stdio_params(env)) as client:
            handles = []
            for i, queue in enumerate((0, 0, 600, 600)):
                prompt = f"durable {i} [[queue={queue}]]"
                result = await client.call_tool("generate_video", {"prompt": prompt, "wait": False})
                handles.append((result.structured_content or {})["task_id"])

            async def statuses() -> list[str]:
                answers = [await client.call_tool("get_task_status", {"task_id": h}) for h in handles]
                return [(answer.structured_content or {}).get("status", "") for answer in answers]

            while await statuses() != ["running", "running", "queued", "queued"]:  # as the server last saw them
                await anyio.sleep(0.1)
            pids = server_pids(marker)
            assert pids, "the server process was not found"
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
            while server_pids(marker):
                await anyio.sleep(0.05)
        assert not list(videos.glob("*.mp4")) if videos.exists() else True
        for task in sandbox.state.tasks.values():  # every render ends now
            task.queued_seconds = task.render_seconds = 0.0

        async with Client(stdio_params(env)) as client:
            results = []
            for handle in handles:
                results.append(await client.call_tool("get_task_status", {"task_id": handle, "wait": True}))
    assert [(r.structured_content or {})["status"] for r in results] == ["succeeded"] * 4
    saved = sorted(videos.glob("*.mp4"))
    assert len(saved) == 4
    assert sorted(Path((r.structured_content or {})["video_path"]) for r in results) == saved
    assert not list(videos.glob(".*part"))
    assert (await sandbox_stats(sandbox))["creates"] == 4


async def test_a_job_whose_submission_was_cut_off_is_marked_unknown_after_restart(tmp_path: Path) -> None:
    """A journal row left in `submitting` by a crash becomes `unknown`, and an identical call is held back."""
    from seedance_mcp.app import create_app
    from seedance_mcp.journal.job import Job, new_job_id
    from seedance_mcp.journal.sqlite import SqliteTaskStore
    from tests.conftest import make_settings

    settings = make_settings(tmp_path)
    async with Client(create_app(settings)) as client:
        dry = await client.call_tool("generate_video", {"prompt": "cut off", "dry_run": True})
    assert dry.is_error is False
    store = await SqliteTaskStore.open(settings.state_dir / "jobs.sqlite3")
    from seedance_mcp.jobs import fingerprint_of
    from seedance_mcp.wire import HttpRequest

    preview = (dry.structured_content or {})["dry_run_request"]
    fingerprint = fingerprint_of("sandbox", HttpRequest(method="POST", url=preview["url"], json_body=preview["body"]))
    now = __import__("time").time()
    job = Job(
        job_id=new_job_id(), provider="sandbox", model="m", model_key="1.5-pro", prompt="cut off",
        status="submitting", fingerprint=fingerprint, created_at=now, updated_at=now,
    )  # fmt: skip
    await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=0)
    await store.close()
    async with Client(create_app(settings)) as client:
        status = await client.call_tool("get_task_status", {"task_id": job.job_id})
        retry = await client.call_tool("generate_video", {"prompt": "cut off"})
    assert (status.structured_content or {})["status"] == "unknown"
    assert retry.is_error is True and "force_new=true" in " ".join(getattr(c, "text", "") for c in retry.content)


@pytest.mark.subprocess
def test_the_package_never_writes_to_stdout_outside_the_cli() -> None:
    """print() in server code would corrupt the stdio channel."""
    package = Path(__file__).resolve().parents[2] / "server" / "seedance_mcp"
    offenders = subprocess.run(
        ["grep", "-rn", "--include=*.py", "-E", r"^\s*print\(", str(package)], capture_output=True, text=True
    ).stdout.splitlines()
    assert [line for line in offenders if "/cli.py:" not in line and "/demo.py:" not in line] == []
