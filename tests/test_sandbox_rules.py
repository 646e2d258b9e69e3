"""The sandbox keeps matching the providers (issue 16, item 10): 2.5's edit, drafts and 4k, a draft_task alone,
OpenAI's 404 envelope, a retired or unactivated model refused as Ark refuses it; and it serves again after an
earlier one in the same process was cancelled."""

from __future__ import annotations

import anyio
import httpx
import pytest

from seedance_mcp.sandbox import SandboxState, running_sandbox

pytestmark = pytest.mark.anyio


async def test_a_sandbox_serves_after_an_earlier_one_in_the_process_was_cancelled() -> None:
    """The embedded sandbox ends by cancellation with its server's runtime; the next one (a second server in one
    process, as tests and hosts make) must still accept connections."""
    with anyio.CancelScope() as scope:
        async with running_sandbox(SandboxState()) as first, httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{first.url}/_sandbox/stats")).status_code == 200
            scope.cancel()
            await anyio.sleep_forever()
    with anyio.fail_after(10):
        async with running_sandbox(SandboxState()) as second, httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{second.url}/_sandbox/stats")).status_code == 200
