"""One way to read a file someone else may change (media/files.read_regular_file), as each of its readers sees it:
the state directory's approval key, through the real server (the inputs and the resource reads are attacked in
test_input_safety.py and test_resource_reads.py)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

CALL = {"prompt": "a red kite", "model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5}


@pytest.mark.parametrize("planted", ["link", "fifo", "huge"])
async def test_an_approval_key_planted_in_the_state_dir_is_never_used_to_sign(
    tmp_path: Path, sandbox: SandboxServer, planted: str
) -> None:
    """A key someone else can read (a link to their file), a FIFO that would hang the read, or a file too large to
    be a key: refused, no approval id is signed with it, and nothing is sent."""
    settings = make_settings(
        tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, confirm_above=1.0
    )
    key = settings.state_dir / "approval.key"
    key.parent.mkdir(parents=True)
    known = tmp_path / "known-key"
    known.write_bytes(b"k" * (64 if planted != "huge" else 1 << 20))
    if planted == "link":
        key.symlink_to(known)
    elif planted == "fifo":
        os.mkfifo(key)
    else:
        key.write_bytes(known.read_bytes())
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            refused = await client.call_tool("generate_video", CALL)
    text = text_of(refused)
    assert refused.is_error is True and "apv-" not in text, text
    assert "not a usable approval key" in text and text.count("Error executing tool") == 1, text
    assert (await sandbox_stats(sandbox))["creates"] == 0
