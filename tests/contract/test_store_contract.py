"""The journal's contract (`seedance_mcp.journal.TaskStore`), one suite run against every store: SQLite and PostgreSQL.

Each test gets an empty journal (SQLite: a file in tmp_path; PostgreSQL: a new database on the session's server)
and can open more "replicas" on it: separate store instances, each with its own connection(s), as separate server
processes would. Lease times come from one fake clock shared by every replica, so expiry is a step of that clock,
never a sleep.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from seedance_mcp.journal import FIRST_TOKEN, Lease, LeaseLost, TaskIdTaken, TaskStore
from seedance_mcp.journal.job import Job, new_job_id
from seedance_mcp.journal.sqlite import SqliteTaskStore

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`

T0 = 1_750_000_000.0
LEASE = 30.0
WINDOW = 600.0


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Journal:
    """One shared journal under test, and a way to open another replica (store instance) on it."""

    kind: str
    clock: FakeClock
    opener: Callable[[], Awaitable[TaskStore]]
    stores: list[TaskStore] = field(default_factory=list[TaskStore])

    async def replica(self) -> TaskStore:
        store = await self.opener()
        self.stores.append(store)
        return store

    async def replicas_now(self) -> float:
        """The journal's clock as every replica reads it (they must agree)."""
        readings = {await store.now() for store in self.stores}
        assert len(readings) == 1, readings
        return readings.pop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncGenerator[Journal]:
    """An empty journal of each kind, closed (every replica) after the test."""
    clock = FakeClock()
    opener: Callable[[], Awaitable[TaskStore]]
    if request.param == "sqlite":
        path = tmp_path / "jobs.sqlite3"

        async def open_sqlite() -> TaskStore:
            return await SqliteTaskStore.open(path, clock=clock)

        opener = open_sqlite
    else:
        from seedance_mcp.journal.postgres import open_postgres_store
        from tests.fakes.postgres_server import fresh_database

        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = await fresh_database(server)

        async def open_postgres() -> TaskStore:
            return await open_postgres_store(url, clock=clock, max_size=4)

        opener = open_postgres
    journal = Journal(str(request.param), clock, opener)
    try:
        yield journal
    finally:
        for store in journal.stores:
            await store.close()


def make_job(clock: FakeClock, *, fingerprint: str = "fp-1", **fields: Any) -> Job:
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
    }
    values.update(fields)
    return Job(**values)


async def put(store: TaskStore, job: Job, *, owner: str | None = None) -> Job:
    """Insert without dedupe; the job as written."""
    assert await store.insert(job, dedupe_window=None, lease_owner=owner, lease_seconds=LEASE) is None
    return job


SAVED = {"status": "succeeded", "video_url": "https://cdn.example/v.mp4", "video_path": "/videos/v.mp4"}
"""Fields of a job that is over: succeeded and its video on disk (no work left)."""


# -- insert, get, dedupe -------------------------------------------------------------------------------------------


async def test_an_inserted_job_reads_back_whole_by_job_id_and_by_task_id(journal: Journal) -> None:
    """`get` finds a job by its job id or its provider task id, with every field as written."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock, task_id="cgt-1", identity={"ratio": "16:9"}, seed=7))
    assert await store.get(job.job_id) == job
    assert await store.get("cgt-1") == job
    assert await store.get("cgt-missing") is None


async def test_any_text_a_caller_or_provider_sends_reads_back_exactly(journal: Journal) -> None:
    """Chinese, emoji, quotes, backslashes and control characters in a job's text survive the journal unchanged."""
    store = await journal.replica()
    text = '一只红色的风筝 🪁 "quoted" \\u0000 literal, tab\t, newline\n, bell\x07, \\ end'
    job = await put(store, make_job(journal.clock, prompt=text, error_message=text, identity={"ratio": text}))
    assert await store.get(job.job_id) == job


async def test_an_identical_live_call_within_the_window_returns_the_earlier_job(journal: Journal) -> None:
    """Same fingerprint, earlier job live and inside the dedupe window: nothing inserted, the earlier job returned."""
    store = await journal.replica()
    first = await put(store, make_job(journal.clock))
    journal.clock.advance(10)
    second = make_job(journal.clock)
    earlier = await store.insert(second, dedupe_window=WINDOW, lease_owner="a", lease_seconds=LEASE)
    assert earlier == first
    assert await store.get(second.job_id) is None


async def test_the_journal_stamps_each_job_with_its_own_clock_and_decides_the_window_by_it(journal: Journal) -> None:
    """A replica whose clock is 11 minutes behind cannot push its job out of the dedupe window: the journal stamps
    `created_at` itself, so the identical call a second later, from a replica whose clock is right, is a duplicate."""
    behind, right = await journal.replica(), await journal.replica()
    first = make_job(journal.clock, created_at=journal.clock.now - 660, updated_at=journal.clock.now - 660)
    assert await behind.insert(first, dedupe_window=WINDOW, lease_owner="behind", lease_seconds=LEASE) is None
    assert first.created_at == journal.clock.now  # the caller's object tells the truth too
    stored = await right.get(first.job_id)
    assert stored is not None and stored.created_at == journal.clock.now == stored.updated_at
    journal.clock.advance(1)
    second = make_job(journal.clock, created_at=journal.clock.now + 660)  # and one ahead cannot stretch it
    assert await right.insert(second, dedupe_window=WINDOW, lease_owner="right", lease_seconds=LEASE) == stored
    assert await journal.replicas_now() == journal.clock.now


async def test_a_daily_budget_counts_from_the_journals_midnight(journal: Journal) -> None:
    """A daily limit counts the jobs created since local midnight of the day the journal's clock says:
    yesterday's spend is not counted, today's is, whatever the caller's clock says."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit, start_of_day

    store = await journal.replica()
    midnight = start_of_day(journal.clock.now)
    journal.clock.now = midnight - 60  # a minute before midnight: yesterday
    await put(store, make_job(journal.clock, fingerprint="y", estimated_tokens=1_000_000, cost_rate=2.0))
    journal.clock.now = midnight + 60
    await put(store, make_job(journal.clock, fingerprint="t", estimated_tokens=1_000_000, cost_rate=1.0))
    daily = SpendLimit(limit=2.5, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    cheap = make_job(journal.clock, fingerprint="a", estimated_tokens=1_000_000, cost_rate=1.0)
    assert await store.insert(cheap, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily]) is None
    dear = make_job(journal.clock, fingerprint="b", estimated_tokens=1_000_000, cost_rate=1.0)
    with pytest.raises(BudgetExceeded) as refused:
        await store.insert(dear, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily])
    assert refused.value.spent == pytest.approx(2.0)


async def test_an_approval_id_pays_for_one_live_job_whatever_the_window(journal: Journal) -> None:
    """A job paid for by an approval id is returned to any later insert with that id (no window, hours later); once
    it ended unbilled (the provider refused it), the id may pay for the video again."""
    store = await journal.replica()
    first = await put(store, make_job(journal.clock, approval_id="apv-1-abc"))
    journal.clock.advance(3 * 3600)
    second = make_job(journal.clock, approval_id="apv-1-abc")
    earlier = await store.insert(second, dedupe_window=None, lease_owner=None, lease_seconds=LEASE)
    assert earlier is not None and earlier.job_id == first.job_id
    first.status = "not_submitted"
    assert await store.update(first)
    assert await store.insert(second, dedupe_window=None, lease_owner=None, lease_seconds=LEASE) is None


async def test_an_identical_call_after_the_window_inserts_a_new_job(journal: Journal) -> None:
    """An identical job created longer than the window ago (by the journal's clock) does not count."""
    store = await journal.replica()
    await put(store, make_job(journal.clock))
    journal.clock.advance(WINDOW + 1)
    second = make_job(journal.clock)
    assert await store.insert(second, dedupe_window=WINDOW, lease_owner=None, lease_seconds=LEASE) is None
    assert await store.get(second.job_id) == second


@pytest.mark.parametrize("dead", ["failed", "cancelled", "expired", "not_submitted"])
async def test_a_dead_job_never_blocks_an_identical_call(journal: Journal, dead: str) -> None:
    """Failed, cancelled, expired and not-submitted jobs cost nothing, so an identical call goes ahead."""
    store = await journal.replica()
    await put(store, make_job(journal.clock, status=dead))
    second = make_job(journal.clock)
    assert await store.insert(second, dedupe_window=WINDOW, lease_owner=None, lease_seconds=LEASE) is None
    assert await store.get(second.job_id) == second


async def test_the_newest_live_identical_job_is_the_one_returned(journal: Journal) -> None:
    """With several live identical jobs in the window, dedupe answers with the newest."""
    store = await journal.replica()
    await put(store, make_job(journal.clock))
    journal.clock.advance(5)
    newest = await put(store, make_job(journal.clock))
    journal.clock.advance(5)
    earlier = await store.insert(make_job(journal.clock), dedupe_window=WINDOW, lease_owner=None, lease_seconds=LEASE)
    assert earlier == newest


async def test_without_a_dedupe_window_every_call_inserts(journal: Journal) -> None:
    """`dedupe_window=None` (force_new) inserts even when an identical live job exists."""
    store = await journal.replica()
    for _ in range(3):
        await put(store, make_job(journal.clock))
    jobs, more = await store.recent(None, 10)
    assert len(jobs) == 3 and not more


async def test_a_different_fingerprint_is_never_a_duplicate(journal: Journal) -> None:
    """Dedupe matches on the fingerprint only."""
    store = await journal.replica()
    await put(store, make_job(journal.clock, fingerprint="fp-1"))
    other = make_job(journal.clock, fingerprint="fp-2")
    assert await store.insert(other, dedupe_window=WINDOW, lease_owner=None, lease_seconds=LEASE) is None


async def test_identical_calls_racing_on_several_replicas_insert_exactly_one_job(journal: Journal) -> None:
    """Many identical inserts at once, from several replicas: one goes in, every other gets that same job back."""
    replicas = [await journal.replica() for _ in range(4)]
    jobs = [make_job(journal.clock) for _ in range(24)]
    answers: dict[str, Job | None] = {}

    async def submit(store: TaskStore, job: Job) -> None:
        answers[job.job_id] = await store.insert(
            job, dedupe_window=WINDOW, lease_owner=f"owner-{job.job_id}", lease_seconds=LEASE
        )

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index, job in enumerate(jobs):
                tg.start_soon(submit, replicas[index % len(replicas)], job)
    inserted = [job_id for job_id, earlier in answers.items() if earlier is None]
    assert len(inserted) == 1
    assert {earlier.job_id for earlier in answers.values() if earlier is not None} == set(inserted)
    jobs, _ = await replicas[0].recent(None, 100)
    assert len(jobs) == 1


# -- compare-and-set, unique task ids ----------------------------------------------------------------------------


async def test_an_update_bumps_the_version_and_a_stale_version_loses(journal: Journal) -> None:
    """A write with the version it read wins and bumps it; a write still holding the older version loses."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock))
    stale = job.model_copy()
    journal.clock.advance(3)
    job.status = "running"
    assert await store.update(job)
    assert job.version == 1 and job.updated_at == journal.clock.now
    stale.status = "failed"
    assert not await store.update(stale)
    stored = await store.get(job.job_id)
    assert stored is not None and stored.status == "running" and stored.version == 1


async def test_concurrent_writers_on_several_replicas_have_exactly_one_winner(journal: Journal) -> None:
    """Writers on different replicas that read the same version race: exactly one write lands."""
    replicas = [await journal.replica() for _ in range(3)]
    job = await put(replicas[0], make_job(journal.clock))
    results: dict[int, bool] = {}

    async def write(index: int) -> None:
        mine = job.model_copy(update={"progress": float(index)})
        results[index] = await replicas[index % len(replicas)].update(mine)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index in range(12):
                tg.start_soon(write, index)
    winners = [index for index, won in results.items() if won]
    assert len(winners) == 1
    stored = await replicas[1].get(job.job_id)
    assert stored is not None and stored.version == 1 and stored.progress == float(winners[0])


async def test_a_task_id_owned_by_another_job_raises_task_id_taken(journal: Journal) -> None:
    """A provider task id belongs to at most one job: a second job claiming it gets TaskIdTaken and is not written."""
    store = await journal.replica()
    await put(store, make_job(journal.clock, task_id="cgt-1"))
    other = await put(store, make_job(journal.clock, fingerprint="fp-2"))
    other.task_id = "cgt-1"
    with pytest.raises(TaskIdTaken) as caught:
        await store.update(other)
    assert caught.value.task_id == "cgt-1"
    stored = await store.get(other.job_id)
    assert stored is not None and stored.task_id is None and stored.version == 0


async def test_a_job_may_rewrite_its_own_task_id(journal: Journal) -> None:
    """Updating a job that already owns its task id is no conflict."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock, task_id="cgt-1"))
    job.status = "running"
    assert await store.update(job)
    assert await store.owner_of(["cgt-1"]) == {"cgt-1": job.job_id}


# -- leases ------------------------------------------------------------------------------------------------------


async def test_claim_takes_only_jobs_with_work_left(journal: Journal) -> None:
    """Jobs that are over (saved, failed, an unknown whose search ended) are never claimed."""
    store = await journal.replica()
    queued = await put(store, make_job(journal.clock, fingerprint="a"))
    searching = await put(store, make_job(journal.clock, fingerprint="b", status="unknown"))
    downloading = await put(
        store, make_job(journal.clock, fingerprint="c", status="succeeded", video_url="https://x/v")
    )
    await put(store, make_job(journal.clock, fingerprint="d", **SAVED))
    await put(store, make_job(journal.clock, fingerprint="e", status="failed"))
    await put(store, make_job(journal.clock, fingerprint="f", status="unknown", search_done=True))
    claimed = await store.claim("a", LEASE, limit=100)
    assert {job.job_id for job, _ in claimed} == {queued.job_id, searching.job_id, downloading.job_id}
    assert await store.claim("b", LEASE, limit=100) == []


async def test_claim_returns_the_jobs_as_stored(journal: Journal) -> None:
    """What `claim` hands back is the stored job, every field as written, with its lease's first token."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock, task_id="cgt-1", progress=0.25))
    assert await store.claim("a", LEASE, limit=10) == [(job, 1)]


async def test_claim_respects_its_limit(journal: Journal) -> None:
    """At most `limit` jobs per claim; the rest stay free for the next one."""
    store = await journal.replica()
    for index in range(5):
        await put(store, make_job(journal.clock, fingerprint=f"fp-{index}"))
    assert len(await store.claim("a", LEASE, limit=3)) == 3
    assert len(await store.claim("b", LEASE, limit=3)) == 2


async def test_a_job_leased_to_another_owner_is_claimed_only_once_its_lease_expires(journal: Journal) -> None:
    """Another replica's live lease is skipped; once its time has passed, the job is taken over."""
    first, second = await journal.replica(), await journal.replica()
    job = await put(first, make_job(journal.clock))
    assert [j.job_id for j, _ in await first.claim("a", LEASE, limit=10)] == [job.job_id]
    assert await second.claim("b", LEASE, limit=10) == []
    journal.clock.advance(LEASE - 1)
    assert await second.claim("b", LEASE, limit=10) == []
    assert await second.claim("b", LEASE, limit=10, job_id=job.job_id) == []
    journal.clock.advance(2)
    assert [j.job_id for j, _ in await second.claim("b", LEASE, limit=10)] == [job.job_id]
    assert await first.renew("a", {job.job_id: 1}, LEASE) == set()


async def test_a_job_inserted_with_a_lease_is_held_by_its_creator(journal: Journal) -> None:
    """A job inserted leased to its creator is not claimed by others mid-create, only after that lease expires."""
    store = await journal.replica()
    job = make_job(journal.clock, status="submitting")
    assert await store.insert(job, dedupe_window=None, lease_owner="creator", lease_seconds=LEASE) is None
    assert await store.claim("other", LEASE, limit=10) == []
    assert await store.renew("creator", {job.job_id: FIRST_TOKEN}, LEASE) == {job.job_id}
    journal.clock.advance(LEASE + 1)
    assert [j.job_id for j, _ in await store.claim("other", LEASE, limit=10)] == [job.job_id]


async def test_claim_by_job_id_takes_one_free_or_own_job(journal: Journal) -> None:
    """`claim(job_id=…)` takes that job if it has work and is free, expired or already the caller's."""
    store = await journal.replica()
    free = await put(store, make_job(journal.clock, fingerprint="a"))
    held = await put(store, make_job(journal.clock, fingerprint="b"), owner="a")
    done = await put(store, make_job(journal.clock, fingerprint="c", **SAVED))
    assert [j.job_id for j, _ in await store.claim("b", LEASE, limit=1, job_id=free.job_id)] == [free.job_id]
    assert await store.claim("b", LEASE, limit=1, job_id=held.job_id) == []
    assert [j.job_id for j, _ in await store.claim("a", LEASE, limit=1, job_id=held.job_id)] == [held.job_id]
    assert await store.claim("a", LEASE, limit=1, job_id=done.job_id) == []
    assert await store.claim("a", LEASE, limit=1, job_id="job-missing") == []


async def test_concurrent_claims_from_several_replicas_never_hand_a_job_to_two_owners(journal: Journal) -> None:
    """Replicas claiming at once, round after round, split the jobs: each job is held by exactly one owner."""
    replicas = [await journal.replica() for _ in range(4)]
    jobs = [await put(replicas[0], make_job(journal.clock, fingerprint=f"fp-{i}")) for i in range(60)]
    holders: dict[str, list[str]] = {}
    tokens: dict[str, int] = {}

    async def worker(index: int) -> None:
        owner = f"replica-{index}"
        while True:
            claimed = await replicas[index].claim(owner, LEASE, limit=4)
            for job, token in claimed:
                holders.setdefault(job.job_id, []).append(owner)
                tokens[job.job_id] = token
            if not claimed:
                return
            await anyio.lowlevel.checkpoint()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index in range(len(replicas)):
                tg.start_soon(worker, index)
    assert set(holders) == {job.job_id for job in jobs}
    assert all(len(owners) == 1 for owners in holders.values()), holders
    for index, store in enumerate(replicas):
        mine = {job_id: tokens[job_id] for job_id, owners in holders.items() if owners == [f"replica-{index}"]}
        assert await store.renew(f"replica-{index}", mine, LEASE) == set(mine)


async def test_renew_extends_only_the_callers_own_leases(journal: Journal) -> None:
    """`renew` returns and extends the leases the caller holds; others' and unleased jobs are left alone."""
    store = await journal.replica()
    mine = await put(store, make_job(journal.clock, fingerprint="a"), owner="a")
    theirs = await put(store, make_job(journal.clock, fingerprint="b"), owner="b")
    unleased = await put(store, make_job(journal.clock, fingerprint="c"))
    journal.clock.advance(LEASE - 1)
    every = {mine.job_id: 1, theirs.job_id: 1, unleased.job_id: 1, "job-missing": 1}
    assert await store.renew("a", every, LEASE) == {mine.job_id}
    assert await store.renew("a", {}, LEASE) == set()
    journal.clock.advance(2)  # past the first lease, inside the renewed one
    claimed = await store.claim("c", LEASE, limit=10)
    assert {job.job_id for job, _ in claimed} == {theirs.job_id, unleased.job_id}


async def test_release_frees_only_the_callers_own_leases(journal: Journal) -> None:
    """After `release`, another replica claims the job at once; releasing someone else's lease does nothing."""
    first, second = await journal.replica(), await journal.replica()
    mine = await put(first, make_job(journal.clock, fingerprint="a"), owner="a")
    theirs = await put(first, make_job(journal.clock, fingerprint="b"), owner="b")
    await first.release("a", {mine.job_id: 1, theirs.job_id: 1})
    await first.release("a", {})
    assert [job.job_id for job, _ in await second.claim("c", LEASE, limit=10)] == [mine.job_id]
    assert await second.renew("b", {theirs.job_id: 1}, LEASE) == {theirs.job_id}


async def test_a_settled_update_releases_the_lease(journal: Journal) -> None:
    """Writing a job with no work left gives its lease back; a write that leaves work keeps it."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock), owner="a")
    job.status = "running"
    assert await store.update(job)
    assert await store.renew("a", {job.job_id: 1}, LEASE) == {job.job_id}
    job.status, job.video_url, job.video_path = "succeeded", "https://cdn.example/v.mp4", "/videos/v.mp4"
    assert await store.update(job)
    assert await store.renew("a", {job.job_id: 1}, LEASE) == set()
    assert await store.claim("b", LEASE, limit=10) == []


async def test_a_job_given_work_again_is_claimable(journal: Journal) -> None:
    """A settled job written back with work left (a download asked for again) can be claimed again."""
    store = await journal.replica()
    job = make_job(
        journal.clock, status="succeeded", video_url="https://x/v", download_error="too big", download_cap_bytes=1024
    )
    await put(store, job)
    assert await store.claim("a", LEASE, limit=10) == []
    job.download_error = job.download_cap_bytes = None
    assert await store.update(job)
    assert [j.job_id for j, _ in await store.claim("a", LEASE, limit=10)] == [job.job_id]


async def test_each_claim_raises_the_lease_token_and_a_stale_token_renews_and_releases_nothing(
    journal: Journal,
) -> None:
    """The lease is a fence: a claim hands out a new token; the previous holder's token no longer renews it,
    releases it, or writes the job (LeaseLost), while the new holder's does all three."""
    first, second = await journal.replica(), await journal.replica()
    job = await put(first, make_job(journal.clock), owner="a")
    journal.clock.advance(LEASE + 1)  # "a" stalled past its lease
    [(taken, token)] = await second.claim("b", LEASE, limit=10)
    assert token == FIRST_TOKEN + 1
    assert await first.renew("a", {job.job_id: FIRST_TOKEN}, LEASE) == set()
    await first.release("a", {job.job_id: FIRST_TOKEN})
    stale = job.model_copy(update={"status": "succeeded", "video_url": "https://x/v", "video_path": "/v/a.mp4"})
    with pytest.raises(LeaseLost):
        await first.update(stale, lease=Lease("a", FIRST_TOKEN))
    assert await first.claim("a", LEASE, limit=10) == []  # "b" still holds it: the release did nothing
    taken.status = "running"
    assert await second.update(taken, lease=Lease("b", token))
    assert await second.renew("b", {job.job_id: token}, LEASE) == {job.job_id}
    stored = await first.get(job.job_id)
    assert stored is not None and stored.status == "running" and stored.video_path is None


async def test_a_holder_that_claims_its_job_again_fences_off_its_own_older_claim(journal: Journal) -> None:
    """Tokens are per claim, not per owner: after "a" lost the job and took it back, a write carrying its first
    token is refused, one carrying the new token goes through."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock), owner="a")
    journal.clock.advance(LEASE + 1)
    [(_, second_token)] = await store.claim("b", LEASE, limit=10)
    journal.clock.advance(LEASE + 1)
    [(again, third_token)] = await store.claim("a", LEASE, limit=10)
    assert (second_token, third_token) == (FIRST_TOKEN + 1, FIRST_TOKEN + 2)
    with pytest.raises(LeaseLost):
        await store.update(job.model_copy(update={"progress": 0.5}), lease=Lease("a", FIRST_TOKEN))
    assert await store.update(again.model_copy(update={"progress": 0.7}), lease=Lease("a", third_token))


async def test_a_fenced_write_that_loses_only_the_version_race_is_not_a_lost_lease(journal: Journal) -> None:
    """A fenced write with an old version, while its lease still holds, just loses the compare-and-set (the
    writer reads again); it is not told it lost the job."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock), owner="a")
    fresher = job.model_copy()
    assert await store.update(fresher)  # another writer (a tool call) changed the job
    assert not await store.update(job.model_copy(update={"progress": 0.5}), lease=Lease("a", FIRST_TOKEN))


async def test_a_replica_never_answers_from_a_settled_copy_older_than_the_journal(journal: Journal) -> None:
    """Replica A has a settled job cached; replica B re-opens it (an identical call wants its last frame): A's next
    read is the re-opened job, with work left, not its cached copy."""
    a, b = await journal.replica(), await journal.replica()
    job = await put(a, make_job(journal.clock, task_id="cgt-1", last_frame_url="https://x/f.png", **SAVED))
    for key in (job.job_id, "cgt-1"):
        cached = await a.get(key)
        assert cached is not None and cached.settled
    reopened = await b.get(job.job_id)
    assert reopened is not None
    reopened.want_last_frame = True
    assert await b.update(reopened)
    for key in (job.job_id, "cgt-1"):
        seen = await a.get(key)
        assert seen is not None and seen.version == reopened.version and seen.want_last_frame and not seen.settled


# -- reads -------------------------------------------------------------------------------------------------------


async def test_recent_lists_newest_first_with_and_without_a_status_and_says_whether_more_match(
    journal: Journal,
) -> None:
    """`recent` orders by creation time, newest first, filters by status, and says whether more jobs match than
    the limit let through (without counting them: a count would cost as much as the journal is long)."""
    store = await journal.replica()
    created: list[Job] = []
    for index, status in enumerate(["queued", "failed", "queued", "running", "queued"]):
        journal.clock.advance(1)
        created.append(await put(store, make_job(journal.clock, fingerprint=f"fp-{index}", status=status)))
    jobs, more = await store.recent(None, 2)
    assert [job.job_id for job in jobs] == [created[4].job_id, created[3].job_id] and more
    jobs, more = await store.recent("queued", 10)
    assert [job.job_id for job in jobs] == [created[4].job_id, created[2].job_id, created[0].job_id] and not more
    jobs, more = await store.recent("queued", 3)
    assert len(jobs) == 3 and not more
    jobs, more = await store.recent("queued", 1)
    assert [job.job_id for job in jobs] == [created[4].job_id] and more
    assert await store.recent("cancelled", 10) == ([], False)
    assert await store.count_by_status() == {"queued": 3, "failed": 1, "running": 1}


async def test_owner_of_maps_only_owned_task_ids(journal: Journal) -> None:
    """`owner_of` names the job owning each task id and leaves out ids no job owns."""
    store = await journal.replica()
    first = await put(store, make_job(journal.clock, fingerprint="a", task_id="cgt-1"))
    second = await put(store, make_job(journal.clock, fingerprint="b", task_id="cgt-2"))
    await put(store, make_job(journal.clock, fingerprint="c"))
    assert await store.owner_of(["cgt-1", "cgt-2", "cgt-3"]) == {"cgt-1": first.job_id, "cgt-2": second.job_id}
    assert await store.owner_of([]) == {}


async def test_a_settled_job_read_twice_is_a_fresh_copy_each_time(journal: Journal) -> None:
    """Reads of a settled job (however cached) never share an object a caller could change."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock, task_id="cgt-1", identity={"ratio": "16:9"}, **SAVED))
    for key in ("cgt-1", job.job_id, "cgt-1"):
        read = await store.get(key)
        assert read is not None and read == job
        read.prompt = "changed by a caller"
        read.identity["ratio"] = "9:16"


async def test_a_job_written_settled_does_not_change_when_its_writer_changes_it_later(journal: Journal) -> None:
    """After `update`, the writer's own object is its own: changing it does not change what `get` returns."""
    store = await journal.replica()
    job = await put(store, make_job(journal.clock, task_id="cgt-1", identity={"ratio": "16:9"}))
    job.status, job.video_url, job.video_path = "succeeded", "https://cdn.example/v.mp4", "/videos/v.mp4"
    assert await store.update(job)
    written = job.model_copy(deep=True)
    job.identity["ratio"] = "9:16"
    assert await store.get("cgt-1") == written


async def test_a_write_from_one_replica_is_read_by_another(journal: Journal) -> None:
    """Replicas share one journal: a job written by one is seen, current, by the other."""
    first, second = await journal.replica(), await journal.replica()
    job = await put(first, make_job(journal.clock))
    assert await second.get(job.job_id) == job
    job.status, job.task_id = "running", "cgt-9"
    assert await first.update(job)
    assert await second.get("cgt-9") == job


# -- budgets -------------------------------------------------------------------------------------------------------


async def test_budgeted_inserts_racing_on_several_replicas_never_pass_the_limit(journal: Journal) -> None:
    """Twelve 1.0-cost jobs race for a 5.0 budget from four replicas: exactly five get in, nothing more is spent."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    replicas = [await journal.replica() for _ in range(4)]
    limit = SpendLimit(limit=5.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    refused: list[BudgetExceeded] = []

    async def submit(store: TaskStore, index: int) -> None:
        job = make_job(journal.clock, fingerprint=f"fp-{index}", estimated_tokens=1_000_000, cost_rate=1.0)
        try:
            await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[limit])
        except BudgetExceeded as exc:
            refused.append(exc)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index in range(12):
                tg.start_soon(submit, replicas[index % len(replicas)], index)
    jobs, _ = await replicas[0].recent(None, 100)
    assert len(jobs) == 5 and len(refused) == 7
    assert all(exc.spent == pytest.approx(5.0) and exc.cost == pytest.approx(1.0) for exc in refused)
    [row] = await replicas[0].spend(journal.clock.now - 3600)
    assert row.jobs == 5 and row.cost == pytest.approx(5.0)


async def test_takes_inserted_together_are_all_in_or_none_under_one_budget_check(journal: Journal) -> None:
    """Four batches of three 1.0-cost takes race for a 5.0 budget from four replicas: one batch gets in whole, the
    others insert nothing (never a batch cut in two), and each refusal counts the whole batch's cost."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    replicas = [await journal.replica() for _ in range(4)]
    limit = SpendLimit(limit=5.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    refused: list[BudgetExceeded] = []

    async def submit(store: TaskStore, index: int) -> None:
        takes = [
            make_job(journal.clock, fingerprint=f"fp-{index}-{take}", estimated_tokens=1_000_000, cost_rate=1.0)
            for take in range(3)
        ]
        try:
            found = await store.insert_all(
                takes, dedupe_window=WINDOW, lease_owner="a", lease_seconds=LEASE, limits=[limit]
            )
            assert found == [None, None, None]
        except BudgetExceeded as exc:
            refused.append(exc)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index in range(4):
                tg.start_soon(submit, replicas[index], index)
    jobs, _ = await replicas[0].recent(None, 100)
    assert len(jobs) == 3 and len({job.fingerprint.rsplit("-", 1)[0] for job in jobs}) == 1
    assert len(refused) == 3 and all(exc.cost == pytest.approx(3.0) for exc in refused)


async def test_takes_found_again_are_returned_and_only_new_ones_inserted_and_counted(journal: Journal) -> None:
    """A repeat of a batch returns the earlier takes and inserts nothing, whatever the budget; a take whose earlier
    job is gone from the window is inserted alone, and only its cost is checked."""
    from seedance_mcp.journal import SpendLimit

    store = await journal.replica()
    limit = SpendLimit(limit=2.5, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    first = [make_job(journal.clock, fingerprint=f"t{i}", estimated_tokens=1_000_000, cost_rate=1.0) for i in range(2)]
    found = await store.insert_all(first, dedupe_window=WINDOW, lease_owner="a", lease_seconds=LEASE, limits=[limit])
    assert found == [None, None]
    again = [make_job(journal.clock, fingerprint=f"t{i}", estimated_tokens=1_000_000, cost_rate=1.0) for i in range(2)]
    found = await store.insert_all(again, dedupe_window=WINDOW, lease_owner="a", lease_seconds=LEASE, limits=[limit])
    assert [job.job_id for job in found if job is not None] == [job.job_id for job in first]
    assert [await store.get(job.job_id) for job in again] == [None, None]
    first[1].status = "failed"  # a refused create: no longer live, not billed
    assert await store.update(first[1])
    third = [make_job(journal.clock, fingerprint=f"t{i}", estimated_tokens=1_000_000, cost_rate=1.0) for i in range(2)]
    found = await store.insert_all(third, dedupe_window=WINDOW, lease_owner="a", lease_seconds=LEASE, limits=[limit])
    assert found[0] is not None and found[0].job_id == first[0].job_id and found[1] is None
    assert await store.get(third[1].job_id) is not None and await store.get(third[0].job_id) is None


async def test_a_budget_counts_only_jobs_in_its_own_currency(journal: Journal) -> None:
    """Amounts in CNY and USD never add up: a USD job does not count against a CNY budget, nor the other way."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    store = await journal.replica()
    await put(
        store, make_job(journal.clock, fingerprint="usd", currency="USD", estimated_tokens=1_000_000, cost_rate=5.0)
    )
    in_cny = SpendLimit(limit=2.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    first = make_job(journal.clock, fingerprint="a", estimated_tokens=1_000_000, cost_rate=1.5)
    assert await store.insert(first, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[in_cny]) is None
    in_usd = SpendLimit(limit=6.0, name="SEEDANCE_DAILY_BUDGET", currency="USD")
    cheap = make_job(journal.clock, fingerprint="b", currency="USD", estimated_tokens=1_000_000, cost_rate=0.5)
    assert await store.insert(cheap, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[in_usd]) is None
    second = make_job(journal.clock, fingerprint="c", estimated_tokens=1_000_000, cost_rate=1.0)
    with pytest.raises(BudgetExceeded) as refused:
        await store.insert(second, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[in_cny])
    assert refused.value.spent == pytest.approx(1.5)


async def test_spend_settles_at_the_billed_cost_and_frees_the_budget_of_unbilled_jobs(journal: Journal) -> None:
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    store = await journal.replica()
    limit = SpendLimit(limit=2.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    first = make_job(journal.clock, fingerprint="a", estimated_tokens=1_000_000, cost_rate=1.0)
    second = make_job(journal.clock, fingerprint="b", estimated_tokens=1_000_000, cost_rate=1.0)
    for job in (first, second):
        await store.insert(job, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[limit])
    third = make_job(journal.clock, fingerprint="c", estimated_tokens=500_000, cost_rate=1.0)
    with pytest.raises(BudgetExceeded):
        await store.insert(third, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[limit])
    first.status, first.usage_tokens = "succeeded", 400_000  # billed less than estimated
    second.status = "failed"  # moderation failures are not billed
    assert await store.update(first) and await store.update(second)
    await store.insert(third, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[limit])
    [row] = await store.spend(journal.clock.now - 3600)
    assert row.cost == pytest.approx(0.9) and row.billed_tokens == 400_000


async def test_lists_spend_and_budgets_are_scoped_to_one_principal(journal: Journal) -> None:
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    store = await journal.replica()
    for principal, count in (("alice", 2), ("bob", 1)):
        for index in range(count):
            job = make_job(
                journal.clock, fingerprint=f"{principal}-{index}", principal=principal,
                estimated_tokens=1_000_000, cost_rate=1.0,
            )  # fmt: skip
            await put(store, job)
    alice, _ = await store.recent(None, 10, principal="alice")
    assert len(alice) == 2 and {job.principal for job in alice} == {"alice"}
    assert len((await store.recent(None, 10))[0]) == 3
    [bob_spend] = await store.spend(journal.clock.now - 1, principal="bob")
    assert bob_spend.cost == pytest.approx(1.0)
    limit = SpendLimit(limit=2.5, name="daily budget of bob", currency="CNY", principal="bob")
    third = make_job(journal.clock, fingerprint="bob-2", principal="bob", estimated_tokens=1_000_000, cost_rate=1.0)
    await store.insert(third, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[limit])
    alice_limit = SpendLimit(limit=2.5, name="daily budget of alice", currency="CNY", principal="alice")
    fourth = make_job(journal.clock, fingerprint="a-3", principal="alice", estimated_tokens=1_000_000, cost_rate=1.0)
    with pytest.raises(BudgetExceeded):
        await store.insert(fourth, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[alice_limit])


# -- storyboard plans ------------------------------------------------------------------------------------------------


async def test_a_plan_is_written_once_its_shots_jobs_kept_and_cancelled_once(journal: Journal) -> None:
    """`record_plan` is an insert-if-absent on the journal's clock: a second write of the plan (a continuing call,
    another replica) gets the first one as it is, from whose time the plan's shots count as made. A shot's job is
    linked as it is inserted (and replaced when the shot is sent again); a cancel is kept once, with its first
    time, and a cancelled plan reserves nothing again."""
    one, two = await journal.replica(), await journal.replica()
    first = await one.record_plan("sb-1", "alice", '{"shots": []}', currency="CNY", reserves=[1.0, 1.0])
    journal.clock.advance(500)
    again = await two.record_plan("sb-1", "alice", '{"shots": ["other"]}', currency="CNY", reserves=[1.0, 1.0])
    assert again == first
    assert (first.created_at, first.cancelled_at, first.data, first.shots) == (T0, None, '{"shots": []}', {})
    assert (first.state, first.currency, first.reserved) == ("running", "CNY", {0: 1.0, 1: 1.0})
    assert (await two.record_plan("sb-2", "bob", "{}")).created_at == T0 + 500
    a = make_job(journal.clock, fingerprint="a")
    assert await one.insert(a, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-1", 0)) is None
    b = make_job(journal.clock, fingerprint="b", status="failed")
    assert await two.insert(b, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-1", 1)) is None
    stored = await two.get_plan("sb-1")
    assert stored is not None and stored.shots == {0: a.job_id, 1: b.job_id} and stored.reserved == {}
    # called again: shot 1's job failed, so shot 1 (only) reserves again and has no job until it is sent again
    again = await one.record_plan("sb-1", "alice", "{}", currency="CNY", reserves=[1.0, 1.0])
    assert again.shots == {0: a.job_id} and again.reserved == {1: 1.0}
    c = make_job(journal.clock, fingerprint="c")
    assert await one.insert(c, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-1", 1)) is None
    assert (await two.get_plan("sb-1") or first).shots == {0: a.job_id, 1: c.job_id}
    cancelled = await one.cancel_plan("sb-1")
    assert cancelled is not None and cancelled.cancelled_at == T0 + 500 and cancelled.state == "cancelled"
    journal.clock.advance(10)
    assert ((await two.cancel_plan("sb-1")) or cancelled).cancelled_at == T0 + 500
    assert (await two.record_plan("sb-1", "alice", "{}", reserves=[1.0, 1.0])).cancelled_at == T0 + 500
    assert await one.get_plan("sb-3") is None and await one.cancel_plan("sb-3") is None
    assert (await one.get_plan("sb-2") or first).cancelled_at is None


def _cost_job(clock: FakeClock, fingerprint: str, cost: float, **fields: Any) -> Job:
    return make_job(clock, fingerprint=fingerprint, estimated_tokens=1_000_000, cost_rate=cost, **fields)


async def test_a_plans_reservation_counts_against_every_budget_until_its_shots_have_jobs(journal: Journal) -> None:
    """A recorded plan's cost is reserved: another plan, or a single video, that would pass the limit with it is
    refused (saying what is spent and reserved); a shot's job takes over its shot's reservation in its insert, so
    the plan is never counted twice; a personal limit counts only its principal's plans."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    store = await journal.replica()
    daily = SpendLimit(limit=5.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    plan = await store.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0, 1.0], limits=[daily])
    assert plan.reserved == {0: 1.0, 1: 1.0, 2: 1.0}
    today = journal.clock.now - 3600
    assert await store.reserved(today) == await store.reserved(today, "alice") == {"sb-a": ("CNY", 3.0)}
    assert await store.reserved(today, "bob") == {}
    with pytest.raises(BudgetExceeded) as refused:
        await store.record_plan("sb-b", "bob", "{}", currency="CNY", reserves=[1.0, 1.5], limits=[daily])
    assert (refused.value.spent, refused.value.cost) == (pytest.approx(3.0), pytest.approx(2.5))
    assert await store.get_plan("sb-b") is None  # nothing written
    single = _cost_job(journal.clock, "single", 2.5)
    with pytest.raises(BudgetExceeded) as refused:
        await store.insert(single, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily])
    assert refused.value.spent == pytest.approx(3.0)
    # the plan's own shots fit: each job takes its shot's place in the count (3.0 + 1.0 would not fit a 3.5 limit)
    tight = SpendLimit(limit=3.5, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    for shot in range(3):
        job = _cost_job(journal.clock, f"shot-{shot}", 1.0)
        assert (
            await store.insert(
                job, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[tight], plan_shot=("sb-a", shot)
            )
            is None
        )
    a_plan = await store.get_plan("sb-a")
    assert a_plan is not None and a_plan.reserved == {} and len(a_plan.shots) == 3
    assert await store.reserved(today) == {}
    # a shot reused by dedupe is linked too, in the insert that finds it
    await store.record_plan("sb-c", "alice", "{}", currency="CNY", reserves=[1.0])
    dup = _cost_job(journal.clock, "shot-0", 1.0)
    earlier = await store.insert(
        dup, dedupe_window=WINDOW, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-c", 0)
    )
    c_plan = await store.get_plan("sb-c")
    assert earlier is not None and c_plan is not None and c_plan.shots == {0: earlier.job_id} and c_plan.reserved == {}
    # a personal limit counts only the principal's own reservations
    bobs = SpendLimit(limit=1.0, name="bob's", currency="CNY", principal="bob")
    await store.record_plan("sb-d", "alice", "{}", currency="CNY", reserves=[4.0])
    assert (await store.record_plan("sb-e", "bob", "{}", currency="CNY", reserves=[1.0], limits=[bobs])).reserved
    with pytest.raises(BudgetExceeded):
        await store.record_plan("sb-f", "bob", "{}", currency="CNY", reserves=[0.5], limits=[bobs])
    # another currency's reservations do not count
    await store.record_plan("sb-g", "bob", "{}", currency="USD", reserves=[100.0])
    nine = SpendLimit(limit=9.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    await store.record_plan("sb-h", "carol", "{}", currency="CNY", reserves=[0.5], limits=[nine])


@pytest.mark.parametrize("end", ["stopped", "done", "cancelled"])
async def test_a_plan_that_stops_finishes_or_is_cancelled_gives_its_reservation_back(
    journal: Journal, end: str
) -> None:
    """Leaving `running` (a compare-and-set from the allowed states: a refused change says so) gives the plan's
    reservation back at once; a stopped plan recorded again reserves again, in one step with the check."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    store = await journal.replica()
    daily = SpendLimit(limit=3.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    await store.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0], limits=[daily])
    big = _cost_job(journal.clock, "big", 2.0)
    with pytest.raises(BudgetExceeded):
        await store.insert(big, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily])
    assert await store.set_plan_state("sb-a", "done", allowed=("stopped",)) is False  # not from `running`
    if end == "cancelled":
        assert (await store.cancel_plan("sb-a") or None) is not None
    else:
        assert await store.set_plan_state("sb-a", end, allowed=("running",)) is True  # type: ignore[arg-type]
    assert await store.set_plan_state("sb-a", "stopped", allowed=("running",)) is False
    assert (await store.get_plan("sb-a") or None) is not None
    assert await store.insert(big, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily]) is None
    again = await store.record_plan("sb-a", "alice", "{}", currency="CNY", reserves=[1.0, 1.0])
    assert again.state == ("running" if end == "stopped" else end)
    if end == "stopped":  # running again: its two shots are reserved again, and a 1.0 video no longer fits
        late = _cost_job(journal.clock, "late", 1.0)
        with pytest.raises(BudgetExceeded):
            await store.insert(late, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, limits=[daily])


async def test_each_take_of_a_shot_is_reserved_and_linked_on_its_own(journal: Journal) -> None:
    """A shot with takes reserves its estimate once per take, in one step with the budget check; each take's job is
    linked to (shot, take) and takes over that take's reservation only; the film's job (`shots`) is take 1's; a
    continuing call reserves again only the takes without a live job."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    one, two = await journal.replica(), await journal.replica()
    daily = SpendLimit(limit=4.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    with pytest.raises(BudgetExceeded) as refused:  # 3 takes of 1.0 and a shot of 1.5 = 4.5
        await one.record_plan("sb-t", "", "{}", currency="CNY", reserves=[1.0, 1.5], takes=[3, 1], limits=[daily])
    assert refused.value.cost == pytest.approx(4.5) and await one.get_plan("sb-t") is None
    plan = await one.record_plan("sb-t", "", "{}", currency="CNY", reserves=[1.0, 1.5], takes=[2], limits=[daily])
    assert plan.reserved == {0: 2.0, 1: 1.5} and plan.takes == {} and plan.shots == {}
    today = journal.clock.now - 3600
    assert await two.reserved(today) == {"sb-t": ("CNY", 3.5)}
    second = _cost_job(journal.clock, "take-2", 1.0)
    assert (
        await two.insert(second, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-t", 0, 2))
        is None
    )
    stored = await one.get_plan("sb-t")
    assert stored is not None and stored.takes == {(0, 2): second.job_id} and stored.shots == {}
    assert stored.reserved == {0: 1.0, 1: 1.5}  # take 1 still holds its estimate
    first = _cost_job(journal.clock, "take-1", 1.0, status="failed")
    assert (
        await one.insert(first, dedupe_window=None, lease_owner=None, lease_seconds=LEASE, plan_shot=("sb-t", 0, 1))
        is None
    )
    stored = await two.get_plan("sb-t")
    assert stored is not None and stored.shots == {0: first.job_id}
    assert stored.takes == {(0, 1): first.job_id, (0, 2): second.job_id} and stored.reserved == {1: 1.5}
    # called again: take 1 failed, so it (only) reserves again; take 2's job is live and keeps its link
    again = await two.record_plan("sb-t", "", "{}", currency="CNY", reserves=[1.0, 1.5], takes=[2], limits=[daily])
    assert again.takes == {(0, 2): second.job_id} and again.reserved == {0: 1.0, 1: 1.5}


async def test_plans_recorded_at_once_on_several_replicas_reserve_only_what_fits(journal: Journal) -> None:
    """Eight plans of 2.0 (two shots of 1.0) race for a 7.0 budget from four replicas: exactly three are recorded,
    the five others are refused and write nothing; the reservations never pass the limit."""
    from seedance_mcp.journal import BudgetExceeded, SpendLimit

    replicas = [await journal.replica() for _ in range(4)]
    limit = SpendLimit(limit=7.0, name="SEEDANCE_DAILY_BUDGET", currency="CNY")
    recorded: list[str] = []
    refused: list[BudgetExceeded] = []

    async def record(store: TaskStore, index: int) -> None:
        try:
            await store.record_plan(f"sb-{index}", "", "{}", currency="CNY", reserves=[1.0, 1.0], limits=[limit])
            recorded.append(f"sb-{index}")
        except BudgetExceeded as exc:
            refused.append(exc)

    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            for index in range(8):
                tg.start_soon(record, replicas[index % len(replicas)], index)
    assert len(recorded) == 3 and len(refused) == 5
    assert all(exc.spent == pytest.approx(6.0) and exc.cost == pytest.approx(2.0) for exc in refused)
    for index in range(8):
        found = await replicas[0].get_plan(f"sb-{index}")
        assert (found is not None) == (f"sb-{index}" in recorded)


async def test_a_running_plan_is_leased_to_one_process_and_taken_over_after_its_lease(journal: Journal) -> None:
    """`claim_plans` hands a running plan to one process; another gets it only once the lease ran out (or was given
    back), with a new token; the old holder's renewal then fails. Stopped and done plans are never claimed."""
    one, two = await journal.replica(), await journal.replica()
    await one.record_plan("sb-1", "", "{}", reserves=[1.0])
    await one.record_plan("sb-2", "", "{}", reserves=[1.0])
    assert await one.set_plan_state("sb-2", "stopped", allowed=("running",))
    [(record, token)] = await one.claim_plans("a", LEASE, limit=10)
    assert record.plan_id == "sb-1"
    assert await two.claim_plans("b", LEASE, limit=10) == []
    assert await one.claim_plans("a", LEASE, limit=10, plan_id="sb-1") == []  # not claimed twice by its holder
    journal.clock.advance(LEASE / 2)
    assert await one.renew_plans("a", {"sb-1": token}, LEASE) == {"sb-1"}
    journal.clock.advance(LEASE / 2 + 1)
    assert await two.claim_plans("b", LEASE, limit=10) == []  # renewed: still a's
    journal.clock.advance(LEASE)
    [(taken, new_token)] = await two.claim_plans("b", LEASE, limit=10, plan_id="sb-1")
    assert taken.plan_id == "sb-1" and new_token > token
    assert await one.renew_plans("a", {"sb-1": token}, LEASE) == set()
    await two.release_plans("b", {"sb-1": new_token})
    [(_, third)] = await one.claim_plans("a", LEASE, limit=10)
    assert third > new_token
    # the process recording a plan runs it: leased to it in the same step, unless another process holds it
    mine = await two.record_plan("sb-3", "", "{}", reserves=[1.0], lease_owner="b", lease_seconds=LEASE)
    assert (mine.lease_owner, mine.lease_token) == ("b", 1)
    assert await one.claim_plans("a", LEASE, limit=10) == []
    again = await one.record_plan("sb-3", "", "{}", reserves=[1.0], lease_owner="a", lease_seconds=LEASE)
    assert (again.lease_owner, again.lease_token) == ("b", 1)
