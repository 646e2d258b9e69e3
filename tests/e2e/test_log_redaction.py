"""Log redaction with a database URL: the password goes, and nothing else does.

Through the real server process: `serve --http` with `SEEDANCE_DATABASE_URL` set, whose journal cannot be opened,
logs the database's error with its traceback; that log keeps the user name, the host, the port and the package's
own paths, and loses the password and every 8-character piece of it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from seedance_mcp.config import database_url_secrets
from seedance_mcp.errors import redact
from tests.conftest import free_port_for_tests
from tests.fakes.stdio_helpers import server_env

pytestmark = pytest.mark.anyio

PASSWORD = "Tr0ub4dor-and-3-horses"


def pieces(secret: str) -> list[str]:
    return [secret[i : i + 8] for i in range(len(secret) - 7)]


async def server_log(tmp_path: Path, database_url: str, until: str) -> str:
    """Start `serve --http` with this database URL, wait (bounded) until its log says `until`, stop it."""
    port = free_port_for_tests()
    env = server_env(
        tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_DATABASE_URL=database_url, SEEDANCE_STARTUP_DELAY="0"
    )
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = await anyio.open_process(
            [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            with anyio.fail_after(30):
                while until not in log_path.read_text():  # the runtime starts by itself (no start-up delay)
                    await anyio.sleep(0.1)
        finally:
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()
    return log_path.read_text()


@pytest.mark.subprocess
async def test_a_refused_database_is_logged_with_its_user_host_and_port_and_without_its_password(
    tmp_path: Path,
) -> None:
    port = free_port_for_tests()
    url = f"postgresql://seedance_mcp:{PASSWORD}@127.0.0.1:{port}/seedance"
    log = await server_log(tmp_path, url, "Is the server running")
    assert f'connection to server at "127.0.0.1", port {port} failed' in log, log[-3000:]
    # A database that cannot be reached is waited out (the runtime is opened again), not a crash with a traceback.
    assert "PostgreSQL journal" in log and "opening the runtime again" in log, log[-3000:]
    assert PASSWORD not in log and [p for p in pieces(PASSWORD) if p in log] == []


@pytest.mark.subprocess
async def test_a_password_the_database_driver_quotes_back_is_still_removed(tmp_path: Path) -> None:
    """libpq quotes a badly %-encoded password in its error: that line reaches the log scrubbed."""
    password = "s3cret%zzpassword"
    url = f"postgresql://seedance_mcp:{password}@127.0.0.1:5/seedance"
    log = await server_log(tmp_path, url, "invalid percent-encoded token")
    assert password not in log and [p for p in pieces(password) if p in log] == [], log[-3000:]
    assert "seedance_mcp/runtime.py" in log


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("postgresql://seedance_mcp:pw%40home-1234@db:5432/seedance", {"pw%40home-1234", "pw@home-1234"}),
        ("postgresql:///seedance?user=app&password=hunter2-hunter2", {"hunter2-hunter2"}),
        (
            "host=db port=5432 user=seedance_mcp password='it\\'s a secret' dbname=x",
            {"it's a secret", "it\\'s a secret"},
        ),
        ("host=db password = plainsecret99 dbname=x", {"plainsecret99"}),
        ("postgresql://seedance_mcp@db/seedance", set[str]()),
        ("postgresql:///seedance", set[str]()),
    ],
)
def test_only_the_password_of_a_database_url_is_a_secret(url: str, secrets: set[str]) -> None:
    assert set(database_url_secrets(url)) == secrets
    line = "seedance_mcp.runtime: connection to server at db:5432 (user seedance_mcp, database seedance) failed"
    assert redact(line, *database_url_secrets(url)) == line


@pytest.mark.subprocess
async def test_a_password_holding_an_ordinary_word_does_not_mangle_the_log(tmp_path: Path) -> None:
    """A person chose it, so it is redacted whole (as written, decoded, URL-encoded): a password containing
    `seedance` (the compose user and database name) used to turn every `seedance_mcp` in the log into `***_mcp`."""
    written = "seedance%2FTr0ub4dor"  # `seedance/Tr0ub4dor`, URL-encoded in the URL
    port = free_port_for_tests()
    url = f"postgresql://seedance_mcp:{written}@127.0.0.1:{port}/seedance"
    log = await server_log(tmp_path, url, "Is the server running")
    assert "***_mcp" not in log and "WARNING seedance_mcp.runtime: The task journal" in log, log[-3000:]
    assert written not in log and "seedance/Tr0ub4dor" not in log
    secrets = database_url_secrets(url)
    line = f"seedance_mcp.jobs: lost seedance/Tr0ub4dor, {written} and seedance%2fTr0ub4dor in seedance_mcp"
    assert redact(line, *secrets) == "seedance_mcp.jobs: lost ***, *** and *** in seedance_mcp"
