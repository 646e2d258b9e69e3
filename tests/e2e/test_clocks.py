"""Dedupe windows, leases and budgets decide by one clock, the journal's: a replica whose clock is wrong pays once.

One of two real `serve --http` replicas (tests/fakes/replicas.py) runs under libfaketime (Debian's `faketime` package,
preloaded with `LD_PRELOAD`) with its wall clock 11 minutes behind; its monotonic clock is left alone
(`FAKETIME_DONT_FAKE_MONOTONIC=1`), as a machine whose clock was simply set wrong has. Both share one PostgreSQL
journal, whose `now()` stamps every job.
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests.conftest import text_of
from tests.fakes.fake_ark import running_fake_ark
from tests.fakes.replicas import journal, mcp_client, replica_env, start_replica, write_tokens_file

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.subprocess,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libfaketime is a Linux preload library"),
]
pytest_plugins = ["tests.fakes.postgres_server"]

BEHIND = "-11m"


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found:
        pytest.skip("libfaketime is not installed: apt-get install faketime")
    return found[0]


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    from tests.fakes.postgres_server import fresh_database

    return await fresh_database(postgres_server)


async def test_identical_calls_across_a_replica_11_minutes_behind_and_one_on_time_pay_once(
    tmp_path: Path, database_url: str
) -> None:
    """Five identical pairs of calls, alternately first on the replica whose clock is 11 minutes behind and first
    on the one on time: every second call of a pair returns the first call's job, so five videos are paid, not
    ten; every job carries the database's time, not the late replica's."""
    preload = libfaketime()
    write_tokens_file(tmp_path / "tokens.json")
    async with running_fake_ark(render_seconds=0.3) as fake:

        def env(name: str, **extra: str) -> dict[str, str]:
            return replica_env(
                tmp_path, name, base_url=fake.base_url, database_url=database_url, poll_interval=0.2,
                lease_seconds=3.0, **extra,
            )  # fmt: skip

        late_env = env("behind", LD_PRELOAD=preload, FAKETIME=BEHIND, FAKETIME_DONT_FAKE_MONOTONIC="1")
        replicas = [await start_replica(tmp_path, "on-time", env("on-time"))]
        try:
            replicas.append(await start_replica(tmp_path, "behind", late_env))
            on_time, behind = replicas
            pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
            with anyio.fail_after(60):
                for index in range(5):
                    first, second = (behind, on_time) if index % 2 == 0 else (on_time, behind)
                    answers: list[dict[str, Any]] = []
                    for replica in (first, second):
                        async with mcp_client(replica.url, "alice") as alice:
                            made = await alice.call_tool("generate_video", {"prompt": f"same call {index}"})
                        assert made.is_error is False, text_of(made)
                        answers.append(made.structured_content or {})
                    pairs.append((answers[0], answers[1]))
            rows = await journal(database_url)
            late_log = behind.log.read_text()
        finally:
            for replica in replicas:
                await replica.stop()
    assert [second["reused_existing"] for _, second in pairs] == [True] * 5, pairs
    assert all(first["task_id"] == second["task_id"] for first, second in pairs)
    assert fake.creates == 5 and len(rows) == 5
    assert "clock is 660" in late_log and "behind the journal's" in late_log
    stamps = sorted(float(row.data["created_at"]) for row in rows)
    fake_times = sorted(request.time for request in fake.requests if request.method == "POST")
    # The journal's time of each job is within seconds of when the (correct) fake saw its create, never 11 min off.
    assert all(abs(stamp - sent) < 30 for stamp, sent in zip(stamps, fake_times, strict=True)), (stamps, fake_times)
