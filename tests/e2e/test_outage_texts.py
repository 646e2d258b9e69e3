"""What the tools say while the PostgreSQL journal is down (review of issue 15, #13), through the real MCP client.

- `list_tasks` says the journal is unavailable (an expected outage, no traceback logged as unexpected).
- `generate_video` says nothing was sent or charged, whichever journal read failed first: a task-id reference, a
  `draft_task_id`, or the insert.
- Once the worker knows the journal is down, a refusal comes at once, not after the pool's 10 s time-out.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.journal.postgres import POOL_TIMEOUT
from seedance_mcp.runtime import LazyRuntime
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]
pytest_plugins = ["tests.fakes.postgres_server"]

NOTHING_CHARGED = "Nothing was sent to the provider and nothing was charged"


async def test_during_an_outage_every_refusal_says_what_it_means_and_comes_at_once(
    tmp_path: Path, sandbox: SandboxServer, own_postgres_server: PostgresServer, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.fakes.postgres_server import fresh_database

    url = await fresh_database(own_postgres_server)
    settings = make_settings(
        tmp_path,
        provider="ark",
        base_url=f"{sandbox.url}/api/v3",
        api_key=SECRET_KEY,
        database_url=url,
        lease_seconds=3.0,
        model="2.5",
    )
    runtimes: list[LazyRuntime] = []

    def said_as_an_outage(name: str, result: Any) -> None:
        text = text_of(result)
        assert result.is_error is True, (name, text)
        assert text.count("Error executing tool") == 1 and "unexpected failure" not in text, (name, text)
        assert "is unavailable" in text, (name, text)
        if name != "list_tasks":
            assert NOTHING_CHARGED in text, (name, text)

    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("list_tasks", "list_tasks", {}),
        ("plain", "generate_video", {"prompt": "during the outage"}),
        ("edit", "generate_video", {"prompt": "edit it", "reference_videos": ["job-0123456789abcdef"]}),
        ("draft", "generate_video", {"prompt": "render the draft", "draft_task_id": "job-0123456789abcdef"}),
    ]
    caplog.set_level(logging.INFO)
    async with Client(create_app(settings, runtimes=runtimes)) as client:
        with anyio.fail_after(120):
            made = await client.call_tool("generate_video", {"prompt": "before the outage"})
            assert made.is_error is False, text_of(made)
            creates = (await sandbox_stats(sandbox))["creates"]
            await anyio.to_thread.run_sync(own_postgres_server.stop)
            try:
                # Right after the stop: whichever read meets the outage first (the worker may not know yet).
                for name, tool, arguments in calls:
                    said_as_an_outage(name, await client.call_tool(tool, arguments))
                runtime = await runtimes[0].get()
                while runtime.jobs.journal_outage is None:  # the claim loop meets it within a round or two
                    await anyio.sleep(0.05)
                for name, tool, arguments in calls:
                    # Known down: refused at once, well within the pool's own time-out.
                    with anyio.fail_after(POOL_TIMEOUT / 2):
                        said_as_an_outage(name, await client.call_tool(tool, arguments))
            finally:
                await anyio.to_thread.run_sync(own_postgres_server.start)
    assert (await sandbox_stats(sandbox))["creates"] == creates
    crashes = [r for r in caplog.records if "unexpected" in r.getMessage() and r.levelno >= logging.ERROR]
    assert crashes == [], [r.getMessage() for r in crashes]
