"""Attacks on the journal's side of storyboard plans (reservations, cancel), against every store: SQLite and
PostgreSQL. Each test shows a defect found in review; each was marked xfail(strict) until the journal was fixed."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from seedance_mcp.journal import BudgetExceeded, PlanNotRunning, SpendLimit, TaskStore, start_of_day
from seedance_mcp.journal.job import Job, new_job_id
from seedance_mcp.journal.sqlite import SqliteTaskStore

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.fakes.postgres_server"]

T0 = 1_750_000_000.0
LEASE = 30.0


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> AsyncGenerator[TaskStore]:
    opened: TaskStore
    if request.param == "sqlite":
        opened = await SqliteTaskStore.open(tmp_path / "jobs.sqlite3", clock=clock)
    else:
        from seedance_mcp.journal.postgres import open_postgres_store
        from tests.fakes.postgres_server import fresh_database

        server: PostgresServer = request.getfixturevalue("postgres_server")
        opened = await open_postgres_store(await fresh_database(server), clock=clock, max_size=2)
    try:
        yield opened
    finally:
        await opened.close()


def shot_job(clock: FakeClock, fingerprint: str, **fields: Any) -> Job:
    """A shot's job whose estimate is 1.0 CNY."""
    values: dict[str, Any] = {
        "job_id": new_job_id(),
        "provider": "ark",
        "model": "seedance-1-0-pro-250528",
        "model_key": "pro",
        "prompt": "a red kite over the sea",
        "status": "queued",
        "fingerprint": fingerprint,
        "created_at": clock.now,
        "updated_at": clock.now,
        "currency": "CNY",
        "estimated_tokens": 1_000_000,
        "cost_rate": 1.0,
    }
    values.update(fields)
    return Job(**values)


async def test_a_plan_running_across_midnight_still_counts_its_unsent_shots_today(
    store: TaskStore, clock: FakeClock
) -> None:
    """Plan A (3 shots of 1.0) is recorded a minute before midnight within a 3.0 daily budget; its first shot is made.
    After midnight its two unsent shots will be paid today (the plan worker resumes it with no storyboard call, so
    nothing reserves them again), so a plan B of 3.0 must not fit today's 3.0 budget beside them. Today B is
    recorded, and A's next shot is then refused at its insert: A stops with one shot paid."""
    daily = SpendLimit(limit=3.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    midnight = start_of_day(T0) + 86_400
    clock.now = midnight - 60
    await store.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0, 1.0], limits=[daily])
    first = shot_job(clock, "a-0")
    assert (
        await store.insert(
            first, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily], plan_shot=("sb-a", 0)
        )
        is None
    )
    clock.now = midnight + 60
    plan = await store.get_plan("sb-a")
    assert plan is not None and plan.state == "running" and plan.reserved == {1: 1.0, 2: 1.0}
    # A's two unsent shots still count today (as reservations: no job of theirs is linked yet):
    assert (await store.reserved(start_of_day(clock.now))).get("sb-a") == ("CNY", 2.0)
    with pytest.raises(BudgetExceeded):
        await store.record_plan("sb-b", "bob", "{}", currency="CNY", reserves=[3.0], limits=[daily])


async def test_a_cancelled_plan_gets_no_new_shot_job(store: TaskStore, clock: FakeClock) -> None:
    """The plan's state is the journal's to enforce: once cancel_plan has answered, no insert for one of its shots
    may journal a job (which the create would then send and the provider charge)."""
    await store.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0])
    cancelled = await store.cancel_plan("sb-a")
    assert cancelled is not None and cancelled.state == "cancelled" and cancelled.shots == {}
    job = shot_job(clock, "a-0")
    with pytest.raises(PlanNotRunning, match="not sent: the plan was cancelled"):
        await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-a", 0))
    assert await store.get(job.job_id) is None
    after = await store.get_plan("sb-a")
    assert after is not None and after.shots == {}


@pytest.mark.postgres
async def test_a_shots_link_made_while_its_plan_is_recorded_again_is_kept(
    request: pytest.FixtureRequest, clock: FakeClock
) -> None:
    """Shot 0's job was proven never made (dead), so the plan's run sends it again and the journal finds an identical
    live job (dedupe) and links it; at the same moment a storyboard call on another replica records the plan again,
    having read shot 0 as dead. The link must survive: otherwise the shot reserves again beside its job's spend (its
    cost counted twice) and a status from another process says `not_sent` of a shot that may be paid.

    The interleaving is made, not hoped for: a third connection holds the plan's row, so record_plan waits at its
    `UPDATE plans` after reading the shots (seen in pg_stat_activity), while the link commits."""
    import psycopg

    from seedance_mcp.journal.postgres import open_postgres_store
    from tests.fakes.postgres_server import fresh_database

    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = await fresh_database(server)
    recorder = await open_postgres_store(url, clock=clock, max_size=2)
    runner = await open_postgres_store(url, clock=clock, max_size=2)
    holder = await psycopg.AsyncConnection.connect(url)
    try:
        await recorder.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0])
        dead = shot_job(clock, "shot-0", status="not_submitted")
        await runner.insert(dead, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-a", 0))
        earlier = shot_job(clock, "shot-0")  # an identical live job, the one the resend's dedupe finds
        assert await runner.insert(earlier, dedupe_window=None, lease_owner=None, lease_seconds=LEASE) is None

        await holder.execute("SELECT 1 FROM plans WHERE plan_id = 'sb-a' FOR NO KEY UPDATE")
        with anyio.fail_after(20):
            async with anyio.create_task_group() as group:
                group.start_soon(
                    lambda: recorder.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0])
                )
                while True:  # record_plan has read the shots and waits for the plan's row
                    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as look:
                        cursor = await look.execute(
                            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                            "AND query LIKE 'UPDATE plans SET state%%'"
                        )
                        row = await cursor.fetchone()
                    if row is not None and row[0] == 1:
                        break
                    await anyio.sleep(0.02)
                resend = shot_job(clock, "shot-0")
                found = await runner.insert(
                    resend, dedupe_window=600.0, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-a", 0)
                )
                assert found is not None and found.job_id == earlier.job_id
                await holder.commit()
        plan = await runner.get_plan("sb-a")
        assert plan is not None
        assert plan.shots.get(0) == earlier.job_id and 0 not in plan.reserved, plan
    finally:
        await holder.close()
        await recorder.close()
        await runner.close()
