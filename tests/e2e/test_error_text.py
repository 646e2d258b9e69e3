"""No tool error reaches the agent without text, and what it says about money is true.

Real failures, not patched internals: a journal row the server cannot read (as one written by a newer version),
and a journal that refuses a write (an SQLite trigger) before the create request leaves or after it came back.
Through the real MCP client in memory, both protocol eras, on the embedded sandbox.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
BARE = "Error executing tool {}"


def journal_of(settings: Any) -> sqlite3.Connection:
    return sqlite3.connect(settings.state_dir / "jobs.sqlite3", isolation_level=None, timeout=30)


@pytest.mark.parametrize("mode", MODES)
async def test_a_journal_row_the_server_cannot_read_fails_list_tasks_with_text_and_the_server_goes_on(
    tmp_path: Path, mode: str
) -> None:
    settings = make_settings(tmp_path, sandbox_render_seconds=0.1)
    with anyio.fail_after(20):
        async with Client(create_app(settings), mode=mode) as client:
            made = await client.call_tool("generate_video", {"prompt": "a paper boat"})
            assert made.is_error is False, text_of(made)
            with journal_of(settings) as db:
                db.execute("""UPDATE jobs SET data = '{"job_id": 7, "written_by": "a newer version"}'""")
            listed = await client.call_tool("list_tasks", {})
            models = await client.call_tool("list_models", {})
    text = text_of(listed)
    assert listed.is_error is True
    assert text.count("Error executing tool") == 1, text
    assert text.strip() != BARE.format("list_tasks") and "ValidationError" in text, text
    assert "server's log" in text and "nothing was charged" in text
    assert SECRET_KEY not in text
    assert models.is_error is False


@pytest.mark.parametrize("mode", MODES)
async def test_a_journal_that_refuses_the_new_job_says_nothing_was_sent(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    with anyio.fail_after(20):
        async with Client(create_app(settings), mode=mode) as client:
            await client.call_tool("list_tasks", {})  # the journal exists now
            with journal_of(settings) as db:
                db.execute("CREATE TRIGGER refuse BEFORE INSERT ON jobs BEGIN SELECT RAISE(ABORT, 'no new jobs'); END")
            result = await client.call_tool("generate_video", {"prompt": "a paper boat", "wait": False})
    text = text_of(result)
    assert result.is_error is True and "no new jobs" in text, text
    assert text.count("Error executing tool") == 1 and text.startswith("Error executing tool generate_video: an"), text
    assert "nothing was sent to the provider and nothing was charged" in text, text
    assert (await sandbox_stats(sandbox))["creates"] == 0


@pytest.mark.parametrize("mode", MODES)
async def test_a_journal_that_fails_after_the_create_says_a_paid_task_may_exist_and_names_the_job(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
    with anyio.fail_after(20):
        async with Client(create_app(settings), mode=mode) as client:
            await client.call_tool("list_tasks", {})
            with journal_of(settings) as db:
                # abs() of the smallest 64-bit integer is SQLite's "integer overflow": a write that fails.
                db.execute(
                    "CREATE TRIGGER fail BEFORE UPDATE ON jobs WHEN NEW.status = 'queued' "
                    "BEGIN SELECT abs(-9223372036854775808); END"
                )
            result = await client.call_tool("generate_video", {"prompt": "a paper boat", "wait": False})
            with journal_of(settings) as db:
                (job_id,) = db.execute("SELECT job_id FROM jobs").fetchone()
                db.execute("DROP TRIGGER fail")
    text = text_of(result)
    assert result.is_error is True and "integer overflow" in text, text
    # The create was answered, so the task is known to exist: it is named (kept and recorded later), not guessed at.
    assert "The provider created task `cgt-" in text and "will be billed" in text, text
    assert job_id in text and "Do not call generate_video again" in text, text
    assert "nothing was sent" not in text.lower()
    assert (await sandbox_stats(sandbox))["creates"] == 1
