"""README.md's "Hosting for a team" without containers, run as written on a throwaway PostgreSQL.

The block is taken from the README itself and run by bash in a copy of the clone with no `.venv`: it creates the
database, the venv (pip installs the package with the postgres extra), a person's token, the sandbox and two
replicas. Only what a test must change is changed: the three ports (free ones instead of 8765-8767), and where
`createdb` and `postgresql:///seedance` find the server (PGHOST and PGUSER, as a local server's socket and role would
be found). Then both replicas must be ready and serve the person's tool calls from the one journal.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import free_port_for_tests, text_of
from tests.stdio_helpers import ROOT

if TYPE_CHECKING:
    from tests.postgres_server import PostgresServer

pytest_plugins = ["tests.postgres_server"]  # own_postgres_server: a server of this test's own

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform == "win32", reason="the recipe is a POSIX shell block"),
]

README = (ROOT / "README.md").read_text()


def recipe() -> str:
    """The shell block of "Without containers" that runs in the clone (the one that starts with `createdb`)."""
    section = README[README.index("**Without containers**") : README.index("## Configuration")]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.DOTALL)
    ours = [block for block in blocks if block.startswith("createdb seedance\n")]
    assert len(ours) == 1, blocks
    return ours[0]


def test_the_recipe_uses_the_venvs_commands_and_ports_that_do_not_collide() -> None:
    """What failed for a newcomer: bare `pip`/`seedance-mcp` outside the venv, a reinstall that replaced the demo's
    editable install, and a second replica on the sandbox's own port."""
    block = recipe()
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert not any(re.match(r"(pip|seedance-mcp)\b", command) for command in commands), block
    assert "pip install -e '.[postgres]'" in block
    ports = re.findall(r"--port (\d+)", block)
    assert len(ports) == len(set(ports)) == 3 and "8766" in ports  # the sandbox keeps its default port
    assert "token alice --file tokens.json" in block


def _clone(into: Path) -> Path:
    """What a clone holds that installing needs, without any venv."""
    clone = into / "clone"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, clone / name)
    shutil.copytree(ROOT / "server", clone / "server", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return clone


@asynccontextmanager
async def as_person(url: str, token: str) -> AsyncGenerator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


@pytest.mark.postgres
@pytest.mark.subprocess
async def test_the_team_recipe_runs_as_written_and_both_replicas_serve_the_person(
    tmp_path: Path,
    own_postgres_server: PostgresServer,
) -> None:
    clone = _clone(tmp_path)
    ports = {port: str(free_port_for_tests()) for port in ("8765", "8766", "8767")}
    script = re.sub(r"\b(8765|8766|8767)\b", lambda m: ports[m[1]], recipe())
    (clone / "recipe.sh").write_text("set -euo pipefail\n" + script)
    pg_bin = [str(own_postgres_server.bindir)] if own_postgres_server.bindir else []
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEEDANCE_", "PG", "VIRTUAL_ENV"))
        and k != "ARK_API_KEY"
        and not k.lower().endswith("_proxy")
    }
    env |= {
        "PATH": os.pathsep.join([*pg_bin, env.get("PATH", "")]),
        "HOME": str(tmp_path / "home"),  # the default state and video dirs land here
        "PGHOST": str(own_postgres_server.socket_dir),
        "PGPORT": str(own_postgres_server.port),
        "PGUSER": "postgres",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    (tmp_path / "home").mkdir()
    out, err = (tmp_path / "recipe.out").open("wb"), (tmp_path / "recipe.err").open("wb")
    shell = await anyio.open_process(
        ["bash", "recipe.sh"], cwd=clone, env=env, stdout=out, stderr=err, start_new_session=True
    )
    replicas = [f"http://127.0.0.1:{ports['8765']}", f"http://127.0.0.1:{ports['8767']}"]

    def said() -> str:
        return (tmp_path / "recipe.out").read_text(errors="replace") + (tmp_path / "recipe.err").read_text(
            errors="replace"
        )

    try:
        with anyio.fail_after(300):  # pip installs the package and its dependencies into a new venv
            await shell.wait()
        assert shell.returncode == 0, said()
        assert (clone / ".venv" / "bin" / "seedance-mcp").is_file()
        token = re.search(r"^(smcp_[\w-]+)$", (tmp_path / "recipe.out").read_text(), re.MULTILINE)
        assert token, said()
        assert (clone / "tokens.json").stat().st_mode & 0o777 == 0o600

        async with httpx.AsyncClient(timeout=10) as http:
            with anyio.fail_after(90):
                for base in replicas:
                    while True:
                        try:
                            ready = await http.get(f"{base}/readyz")
                            if ready.status_code == 200:
                                break
                        except httpx.TransportError:
                            pass
                        await anyio.sleep(0.3)
            assert [(await http.get(f"{base}/readyz")).json()["journal"] for base in replicas] == ["ok", "ok"]
            refused = await http.post(f"{replicas[1]}/mcp", json={}, headers={"Authorization": "Bearer smcp_nobody"})
        assert refused.status_code == 401

        with anyio.fail_after(90):
            async with as_person(f"{replicas[0]}/mcp", token[1]) as first:
                made = await first.call_tool("generate_video", {"prompt": "a team's first video", "duration": 5})
            data = made.structured_content or {}
            assert data.get("status") == "succeeded", text_of(made)
            async with as_person(f"{replicas[1]}/mcp", token[1]) as second:
                seen = await second.call_tool("get_task_status", {"task_id": data["task_id"]})
                listed = (await second.call_tool("list_tasks", {})).structured_content or {}
        assert (seen.structured_content or {})["video_path"] == data["video_path"]
        assert Path(data["video_path"]).is_relative_to(tmp_path / "home")
        assert [task["task_id"] for task in listed["tasks"]] == [data["task_id"]]
    finally:
        await _stop_group(shell)
        out.close()
        err.close()


async def _stop_group(shell: anyio.abc.Process) -> None:
    """Stop what the recipe started (the sandbox and both replicas, in the session its shell led): SIGTERM, and
    SIGKILL for whatever is still there after ten seconds."""
    if shell.returncode is None:
        shell.kill()
        with anyio.move_on_after(10):
            await shell.wait()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(shell.pid, sig)
        except ProcessLookupError:
            return
        with anyio.move_on_after(10):
            while True:
                try:
                    os.killpg(shell.pid, 0)
                except ProcessLookupError:
                    return
                await anyio.sleep(0.1)
