"""Several real `serve --http` replicas on one PostgreSQL journal, behind a round-robin proxy (tests/fakes/replicas.py).

Each test starts its own replicas (`python -m seedance_mcp serve --http`, stateless, one shared request-state key,
one tokens file with three principals, one output directory, a state directory each, leases of
`LEASE_SECONDS`) on a fresh database of the session's PostgreSQL server, in front of the socket-level fake Ark
(tests/fakes/fake_ark.py). Clients reach them through a loopback TCP proxy that hands each connection to the next
replica; every client request is a connection of its own, so one client's calls land on every replica.

Poll streams are judged by `tests.fakes.replicas.early_polls`: one follower polls, waits for the answer, sleeps at least
`POLL_INTERVAL` (the interval is also the cap, and Ark reports no percent), so the fake reads each of its polls at
least an interval after it began answering the one before, however loaded the machine; a poll read sooner is a
second follower, or the first poll after a hand-over to another replica (immediate).
"""

from __future__ import annotations

import base64
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client

from tests.conftest import text_of
from tests.fakes.fake_ark import FakeArk, mp4_bytes, running_fake_ark
from tests.fakes.replicas import (
    Cluster,
    JournalRow,
    download_times,
    journal,
    large_mp4_bytes,
    mcp_client,
    poll_stream_problems,
    poll_times,
    provider_requests,
    running_cluster,
    running_stalling_fake_ark,
    until,
    until_journal,
)

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.subprocess,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILLs server processes"),
]
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
LEASE_SECONDS = 3.0
"""Short, so a killed replica's jobs are taken over within seconds; only the replica a test kills has it. The others
have the default 30 s lease: with 3 s everywhere, a replica starved of CPU for half a lease on a loaded machine sees a
live job taken over and downloaded again (the likely cause of the "downloaded once" failures seen under load)."""
VICTIM_LEASES: dict[str, Any] = {"lease_seconds": 30.0, "leases": {"replica-0": LEASE_SECONDS}}
"""For the tests that kill `replica-0`: its leases are short, the survivors' are not."""


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    """The URL of a new, empty database on the session's server."""
    from tests.fakes.postgres_server import fresh_database

    return await fresh_database(postgres_server)


def _data(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return result.structured_content or {}


async def _submit(client: Client, prompt: str) -> dict[str, Any]:
    return _data(await client.call_tool("generate_video", {"prompt": prompt, "wait": False}))


async def _submit_many(url: str, principals: Sequence[str], clients: int, per_client: int, tag: str) -> list[str]:
    """`clients` MCP clients (principals in turn), each sending `per_client` calls at once; the task ids."""
    handles: list[str] = []

    async def one_client(index: int) -> None:
        async with mcp_client(url, principals[index % len(principals)]) as client:

            async def one(j: int) -> None:
                job = await _submit(client, f"{tag}: client {index}, job {j}")
                assert not job.get("reused_existing")
                handles.append(job["task_id"])

            async with anyio.create_task_group() as group:
                for j in range(per_client):
                    group.start_soon(one, j)

    async with anyio.create_task_group() as group:
        for index in range(clients):
            group.start_soon(one_client, index)
    return handles


def _settled(count: int) -> Any:
    def check(rows: list[JournalRow]) -> bool:
        return len(rows) == count and all(not r.has_work for r in rows)

    return check


def _assert_each_saved_once(
    cluster: Cluster, fake: FakeArk, rows: list[JournalRow], video: bytes | None = None
) -> None:
    """Every job succeeded with its own MP4 on disk (the bytes the fake served), each task downloaded once, nothing
    half-written left."""
    assert [r.status for r in rows] == ["succeeded"] * len(rows), [(r.task_id, r.status) for r in rows]
    task_ids = [r.task_id for r in rows]
    assert len(set(task_ids)) == len(rows) and None not in task_ids, "a task id twice in the journal"
    paths = sorted(Path(r.data["video_path"]) for r in rows)
    assert len(set(paths)) == len(rows)
    expected = mp4_bytes() if video is None else video
    assert all(path.is_file() and path.read_bytes() == expected for path in paths)
    assert sorted(cluster.videos.glob("*.mp4")) == paths
    assert not [p.name for p in cluster.videos.iterdir() if p.name.endswith(".part")]
    downloads = {r.task_id: fake.downloads_of(r.task_id or "") for r in rows}
    assert downloads == dict.fromkeys(task_ids, 1), {t: n for t, n in downloads.items() if n != 1}


async def test_jobs_from_many_clients_through_three_replicas_each_land_once(tmp_path: Path, database_url: str) -> None:
    """500 generate_video calls from 20 clients of two principals, spread over three replicas: each paid, followed
    and saved once, and every replica served some of them."""
    clients, per_client = 20, 25
    count = clients * per_client
    async with (
        running_fake_ark(render_seconds=2.0) as fake,
        running_cluster(tmp_path, base_url=fake.base_url, database_url=database_url, lease_seconds=30.0) as cluster,
    ):
        with anyio.fail_after(60):
            handles = await _submit_many(cluster.url, ["alice", "bob"], clients, per_client, "many")
            assert fake.creates == count
            rows = await until_journal(database_url, _settled(count), "every job settled", 40)
            async with mcp_client(cluster.url, "alice") as alice, mcp_client(cluster.url, "bob") as bob:
                listed = {
                    name: _data(await client.call_tool("list_tasks", {"status": "succeeded", "limit": 200}))
                    for name, client in (("alice", alice), ("bob", bob))
                }
            sent = [await provider_requests(replica) for replica in cluster.replicas]
        connections = list(cluster.proxy.connections)
    logger.info("connections per replica %s, provider requests per replica %s", connections, sent)
    assert sorted(handles) == sorted(r.task_id or "" for r in rows)
    _assert_each_saved_once(cluster, fake, rows)
    assert fake.creates == count
    assert {name: (len(listed[name]["tasks"]), listed[name]["more"]) for name in listed} == {
        "alice": (200, True),
        "bob": (200, True),
    }
    assert {name: sum(r.principal == name for r in rows) for name in listed} == {"alice": count // 2, "bob": count // 2}
    # Requests really spread: each replica was handed connections, and sent some of the creates (a create leaves
    # from the replica that got the generate_video call); together exactly one per job.
    assert all(n > 0 for n in connections), connections
    creates = [s.get("create", 0) for s in sent]
    assert all(n > 0 for n in creates) and sum(creates) == count, (creates, sent)
    problems = poll_stream_problems(fake, handles, interval=POLL_INTERVAL)
    assert not problems, problems
    assert not fake.handler_errors and not cluster.proxy.errors, (fake.handler_errors, cluster.proxy.errors)


def _owners(rows: list[JournalRow], cluster: Cluster) -> dict[str, str]:
    """Which replica holds each task's lease now (by the pid in the lease owner), `-` for none."""
    names = {replica.pid: replica.name for replica in cluster.every}
    return {r.task_id or r.job_id: names.get(r.owner_pid or 0, "-") for r in rows}


async def test_a_replica_killed_mid_render_leaves_its_jobs_to_the_others_once(
    tmp_path: Path, database_url: str
) -> None:
    """SIGKILL one of three replicas while it follows a third of the renders: the other two take them over once the
    leases expire; no create is sent twice, each task has one poll stream at a time and is downloaded once."""
    count = 24
    # Renders last until the test lets them finish, so the kill surely lands mid-render.
    async with (
        running_fake_ark(render_seconds=600.0) as fake,
        running_cluster(tmp_path, base_url=fake.base_url, database_url=database_url, **VICTIM_LEASES) as cluster,
    ):
        with anyio.fail_after(45):
            handles = await _submit_many(cluster.url, ["alice", "bob", "carol"], 6, count // 6, "mid-render")
            await until(lambda: all(fake.polls_of(h) >= 2 for h in handles), "every job followed", 10)
            owners = _owners(await journal(database_url), cluster)
            victim = cluster.replicas[0]
            theirs = sorted(h for h in handles if owners[h] == victim.name)
            assert theirs and len(theirs) < count, owners
            victim.kill()
            killed_wall = time.time()
            # A poll the fake reads well after the kill comes from a survivor (the victim's last bytes may still
            # be in transit).
            after = killed_wall + 0.5
            await until(
                lambda: all(any(t > after for t in poll_times(fake, h)) for h in theirs),
                "the survivors take the victim's jobs over",
                LEASE_SECONDS + 6,
            )
            taken = _owners(await journal(database_url), cluster)
            first_takeover = min(min(t for t in poll_times(fake, h) if t > after) for h in theirs)
            assert not fake.downloads_of(theirs[0])
            fake.render_seconds = 0.0  # every task succeeds now
            rows = await until_journal(database_url, _settled(count), "every job settled", 20)
            async with mcp_client(cluster.url, "alice") as alice:
                # Through the proxy, which skips the dead replica: alice's jobs read back from the survivors.
                mine = _data(await alice.call_tool("list_tasks", {"status": "succeeded", "limit": 50}))
        logger.info("killed %s holding %d of %d jobs; then held by %s", victim.name, len(theirs), count, taken)
    assert {taken[h] for h in theirs} <= {r.name for r in cluster.replicas[1:]}, taken
    # The victim renewed its leases every LEASE_SECONDS / 3, so they outlived it by two thirds of a lease or more.
    assert first_takeover - killed_wall >= LEASE_SECONDS / 3, (first_takeover - killed_wall, cluster.logs())
    assert fake.creates == count
    _assert_each_saved_once(cluster, fake, rows)
    assert len(mine["tasks"]) == count // 3 and not mine["more"]
    others = [h for h in handles if h not in theirs]
    problems = {
        **poll_stream_problems(fake, theirs, interval=POLL_INTERVAL, hand_overs=1),
        **poll_stream_problems(fake, others, interval=POLL_INTERVAL),
    }
    assert not problems, problems
    assert cluster.proxy.refused[0] >= 1, "the proxy never tried the dead replica: the kill was not exercised"


def _parts(videos: Path, pid: int | None = None) -> list[str]:
    """The partial downloads in the output directory (of one process, or of any)."""
    import re

    of = re.compile(rf"\.[A-Za-z0-9_]+-{pid if pid is not None else '[0-9]+'}-[0-9a-f]{{8}}\.part$")  # host-pid-nonce
    return sorted(p.name for p in videos.iterdir() if of.search(p.name)) if videos.is_dir() else []


async def test_a_replica_killed_mid_download_leaves_the_video_to_another_which_saves_it_once(
    tmp_path: Path, database_url: str
) -> None:
    """SIGKILL a replica while its downloads are half-way through the body: once the leases expire the survivor
    downloads each of those videos again, one complete file per task; the partial files the dead process left are
    removed by the start-up sweep of the next process on the directory (a restarted replica)."""
    count = 8
    async with (
        running_stalling_fake_ark(render_seconds=600.0) as fake,
        running_cluster(
            tmp_path, base_url=fake.base_url, database_url=database_url, replicas=2, **VICTIM_LEASES
        ) as cluster,
    ):
        with anyio.fail_after(45):
            handles = await _submit_many(cluster.url, ["alice", "bob"], 4, count // 4, "mid-download")
            await until(lambda: all(fake.polls_of(h) >= 1 for h in handles), "every job followed", 10)
            victim = cluster.replicas[0]
            owners = _owners(await journal(database_url), cluster)
            theirs = sorted(h for h in handles if owners[h] == victim.name)
            assert theirs and len(theirs) < count, owners
            # The victim's downloads stop half-way through the body for longer than this test lasts.
            fake.stall.update(dict.fromkeys(theirs, 120.0))
            fake.render_seconds = 0.0  # every task succeeds now
            await until(
                lambda: len(_parts(cluster.videos, victim.pid)) == len(theirs),
                "the victim is streaming each of its videos into a partial file",
                10,
            )
            assert all(len(download_times(fake, h)) == 1 for h in theirs)
            victim.kill()
            killed_wall = time.time()
            rows = await until_journal(database_url, _settled(count), "every job settled", 20)
            left_by_victim = _parts(cluster.videos, victim.pid)
            # A process starting on the output directory sweeps the partial files of processes that are gone.
            await cluster.restart(0, "replica-0-again")
            await until(lambda: not _parts(cluster.videos), "the restarted replica sweeps the partial files", 10)
    logger.info("killed %s mid-download of %s; partial files it left: %s", victim.name, theirs, left_by_victim)
    assert fake.creates == count
    # Each of the victim's videos: the cut download, then one complete download by the survivor after the take-over.
    retried = {h: download_times(fake, h) for h in theirs}
    assert all(len(times) == 2 for times in retried.values()), retried
    assert all(times[1] - killed_wall >= LEASE_SECONDS / 3 for times in retried.values()), (killed_wall, retried)
    assert all(len(download_times(fake, h)) == 1 for h in handles if h not in theirs)
    _assert_each_saved_once(cluster, fake, rows, large_mp4_bytes())


async def _refused(call: Any) -> str:
    """The text of a refusal: a tool error result, or a protocol error (resources/read)."""
    from mcp import MCPError

    try:
        result = await call
    except MCPError as exc:
        return str(exc)
    assert result.is_error, f"expected a refusal, got {result}"
    return text_of(result)


async def test_principals_cannot_see_or_cancel_each_others_tasks_through_any_replica(
    tmp_path: Path, database_url: str
) -> None:
    """Alice's task is "not found" for bob on every replica (status, cancel, its video resource) and missing from
    his list, whether queued or finished; alice sees it, and reads its video, from every replica."""
    async with (
        running_fake_ark(render_seconds=0.0, queue_seconds=600.0) as fake,
        running_cluster(tmp_path, base_url=fake.base_url, database_url=database_url) as cluster,
    ):
        with anyio.fail_after(45):
            async with mcp_client(cluster.url, "alice") as alice, mcp_client(cluster.url, "bob") as bob:
                mine = await _submit(alice, "alice's kite over the dunes")
                his = await _submit(bob, "bob's boat on the lake")
            handle, job_id = mine["task_id"], mine["job_id"]
            uri = f"seedance://tasks/{handle}/video"
            refusals: list[str] = []

            async def check_every_replica(finished: bool) -> None:
                for replica in cluster.replicas:
                    async with mcp_client(replica.url, "bob") as bob, mcp_client(replica.url, "alice") as alice:
                        for key in (handle, job_id):
                            refusals.append(await _refused(bob.call_tool("get_task_status", {"task_id": key})))
                            refusals.append(await _refused(bob.call_tool("cancel_task", {"task_id": key})))
                        refusals.append(await _refused(bob.read_resource(uri, cache_mode="bypass")))
                        listed = _data(await bob.call_tool("list_tasks", {}))
                        assert [t["task_id"] for t in listed["tasks"]] == [his["task_id"]], replica.name
                        seen = _data(await alice.call_tool("get_task_status", {"task_id": handle}))
                        assert seen["status"] == ("succeeded" if finished else "queued"), (replica.name, seen)
                        own = _data(await alice.call_tool("list_tasks", {}))
                        assert [t["task_id"] for t in own["tasks"]] == [handle], replica.name
                        if finished:
                            read = await alice.read_resource(uri, cache_mode="bypass")
                            assert [c.mime_type for c in read.contents] == ["video/mp4"], replica.name
                            blob = getattr(read.contents[0], "blob", "")
                            assert base64.b64decode(blob) == mp4_bytes(), replica.name

            await check_every_replica(finished=False)
            assert not fake.tasks[handle].cancelled and fake.count("DELETE") == 0, "bob cancelled alice's task"
            fake.queue_seconds = 0.0  # both tasks succeed now
            await until_journal(database_url, _settled(2), "both jobs settled", 15)
            await check_every_replica(finished=True)
    assert len(refusals) == 2 * 3 * 5
    assert all("No task" in text for text in refusals), refusals
    assert not any("alice" in text.replace(handle, "") for text in refusals), refusals
    assert fake.creates == 2


# 2.0 at 720p 16:9 for 5 s: 108,900 tokens at 46 CNY per million = 5.0094 CNY (tests/e2e/test_spending.py).
VIDEO = {"model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5, "wait": False}
VIDEO_COST = 108900 * 46 / 1e6


async def test_a_team_budget_holds_for_everyone_together_and_a_persons_budget_for_each_through_any_replica(
    tmp_path: Path, database_url: str
) -> None:
    """SEEDANCE_DAILY_BUDGET is everyone's spend together, SEEDANCE_DAILY_BUDGET_PER_PERSON each person's; both
    are checked by the journal at insert, whichever replica takes the call. Budgets of 2.5 videos for the team
    and 1.5 for a person: alice's three calls at once make one video; then bob's and carol's four at once make
    one more between them, and no third anywhere."""
    results: dict[str, list[Any]] = {"alice": [], "bob": [], "carol": []}

    async def submit(name: str, index: int) -> None:
        async with mcp_client(cluster.url, name) as client:
            call = {**VIDEO, "prompt": f"{name}'s kite {index}"}
            results[name].append(await client.call_tool("generate_video", call))

    async with (
        running_fake_ark(render_seconds=30.0) as fake,
        running_cluster(
            tmp_path,
            base_url=fake.base_url,
            database_url=database_url,
            SEEDANCE_DAILY_BUDGET=str(VIDEO_COST * 2.5),
            SEEDANCE_DAILY_BUDGET_PER_PERSON=str(VIDEO_COST * 1.5),
        ) as cluster,
    ):
        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for index in range(3):
                    group.start_soon(submit, "alice", index)
            async with anyio.create_task_group() as group:
                for index in range(2):
                    group.start_soon(submit, "bob", index)
                    group.start_soon(submit, "carol", index)
            rows = await journal(database_url)
    made = {name: [r for r in answers if not r.is_error] for name, answers in results.items()}
    refused = {name: [text_of(r) for r in answers if r.is_error] for name, answers in results.items()}
    assert len(made["alice"]) == 1, refused["alice"]
    assert all("SEEDANCE_DAILY_BUDGET_PER_PERSON" in t and "Nothing was sent" in t for t in refused["alice"])
    assert len(made["bob"]) + len(made["carol"]) == 1, (refused["bob"], refused["carol"])
    team_refusals = refused["bob"] + refused["carol"]
    assert len(team_refusals) == 3
    assert all("SEEDANCE_DAILY_BUDGET " in t or "SEEDANCE_DAILY_BUDGET (" in t for t in team_refusals), team_refusals
    assert fake.creates == 2 and len(rows) == 2


async def test_the_person_approves_one_video_whichever_replica_quoted_or_asked(
    tmp_path: Path, database_url: str
) -> None:
    """Above SEEDANCE_CONFIRM_ABOVE: an approval id one replica quoted is accepted by another, for that person's
    video only; a client that can ask is asked (2026-07-28 rounds, each on the next replica) and its answer holds."""
    import re

    from mcp import types
    from mcp.client.session import ClientRequestContext

    asked: list[str] = []

    async def person_says_yes(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"approve": True})

    call = {**VIDEO, "prompt": "alice's kite at dusk"}
    async with (
        running_fake_ark(render_seconds=30.0) as fake,
        running_cluster(
            tmp_path, base_url=fake.base_url, database_url=database_url, SEEDANCE_CONFIRM_ABOVE="1"
        ) as cluster,
    ):
        first, second, third = cluster.replicas
        with anyio.fail_after(60):
            async with mcp_client(first.url, "alice") as alice:
                quoted = await alice.call_tool("generate_video", call)
            match = re.search(r'approval_id="([^"]+)"', text_of(quoted))
            assert quoted.is_error and match is not None, text_of(quoted)
            async with mcp_client(second.url, "bob") as bob:
                not_bobs = await bob.call_tool("generate_video", {**call, "approval_id": match.group(1)})
            async with mcp_client(third.url, "alice") as alice:
                approved = await alice.call_tool("generate_video", {**call, "approval_id": match.group(1)})
            async with mcp_client(cluster.url, "carol", elicitation_callback=person_says_yes) as carol:
                carols = await carol.call_tool("generate_video", {**VIDEO, "prompt": "carol's kite"})
            # A 2025-era client on stateless HTTP: no question can reach it (whether it shows forms or not), and an
            # approval id would let its model approve the spending itself: refused without one, saying how to set
            # it up; an id quoted on the 2026-07-28 protocol is not taken from it either.
            bobs_kite = {**VIDEO, "prompt": "bob's kite"}
            async with mcp_client(cluster.url, "bob") as bob:
                bob_quoted = await bob.call_tool("generate_video", bobs_kite)
            bob_id = re.search(r'approval_id="([^"]+)"', text_of(bob_quoted))
            assert bob_quoted.is_error and bob_id is not None, text_of(bob_quoted)
            async with mcp_client(cluster.url, "bob", elicitation_callback=person_says_yes, mode="legacy") as bob:
                bobs = await bob.call_tool("generate_video", bobs_kite)
            async with mcp_client(cluster.url, "bob", mode="legacy") as bob:
                bobs_with_id = await bob.call_tool("generate_video", {**bobs_kite, "approval_id": bob_id.group(1)})
                bobs_dry_run = await bob.call_tool("generate_video", {**bobs_kite, "dry_run": True})
            rows = await journal(database_url)
    assert not_bobs.is_error and "needs the user's approval" in text_of(not_bobs)
    assert approved.is_error is False, text_of(approved)
    assert carols.is_error is False and len(asked) == 1 and "5.01 CNY" in asked[0], text_of(carols)
    for refused in (bobs, bobs_with_id):
        text = text_of(refused)
        assert refused.is_error and "needs the user's approval" in text and 'approval_id="apv-' not in text, text
        assert "SEEDANCE_HTTP_STATELESS=false" in text and "2026-07-28" in text, text
    assert bobs_dry_run.is_error is False and "apv-" not in text_of(bobs_dry_run), text_of(bobs_dry_run)
    assert "SEEDANCE_HTTP_STATELESS=false" in text_of(bobs_dry_run)
    assert len(asked) == 1
    assert sorted(r.principal for r in rows) == ["alice", "carol"] and fake.creates == 2
