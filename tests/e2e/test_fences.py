"""The lease is a fence, and no process answers from a copy older than the journal's: real replicas, disturbed.

Real `serve --http` replicas (tests/fakes/replicas.py) on one PostgreSQL journal with 3 s leases, following the
socket-level fake Ark (tests/fakes/fake_ark.py), which counts every GET of every video. A replica is frozen
(SIGSTOP) past its leases while the others take its jobs over, then thawed: it must neither fetch a video again nor
record anything over the new holder. A settled job re-opened through one replica must not be answered as settled by
another.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest

from tests.conftest import text_of
from tests.fakes.fake_ark import mp4_bytes, png_bytes, running_fake_ark
from tests.fakes.replicas import (
    Cluster,
    JournalRow,
    download_times,
    journal,
    large_mp4_bytes,
    mcp_client,
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
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="stops and resumes server processes"),
]
pytest_plugins = ["tests.fakes.postgres_server"]

LEASE_SECONDS = 3.0


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    from tests.fakes.postgres_server import fresh_database

    return await fresh_database(postgres_server)


def _data(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return result.structured_content or {}


def _owner_names(rows: list[JournalRow], cluster: Cluster) -> dict[str, str]:
    names = {replica.pid: replica.name for replica in cluster.every}
    return {r.task_id or r.job_id: names.get(r.owner_pid or 0, "-") for r in rows}


async def test_a_replica_frozen_past_its_leases_neither_fetches_nor_records_the_videos_taken_over(
    tmp_path: Path, database_url: str
) -> None:
    """One of two replicas is frozen while its poll of some of its jobs is in flight, for longer than its leases;
    the renders end meanwhile and the other replica takes every job over and saves it. Then the held poll is
    answered ("succeeded", with the video's URL) and the frozen replica thawed: the answer is the first thing it
    reads, and it still believes it holds those jobs. It must learn from the journal that it does not before it
    fetches anything: every video is fetched exactly once, and nothing it writes lands over the new holder."""
    count = 8
    async with (
        running_fake_ark(render_seconds=600.0) as fake,
        running_cluster(
            tmp_path, base_url=fake.base_url, database_url=database_url, replicas=2, lease_seconds=LEASE_SECONDS
        ) as cluster,
    ):
        with anyio.fail_after(90):
            async with mcp_client(cluster.url, "alice") as alice:
                handles = [_data(await alice.call_tool("generate_video", {"prompt": f"p{i}", "wait": False}))
                           for i in range(count)]  # fmt: skip
            task_ids = [job["task_id"] for job in handles]
            await until(lambda: all(fake.polls_of(t) >= 2 for t in task_ids), "every job followed", 15)
            frozen, other = cluster.replicas
            owners = _owner_names(await journal(database_url), cluster)
            theirs = [t for t in task_ids if owners[t] == frozen.name]
            assert theirs and len(theirs) < count, owners
            answer = anyio.Event()
            fake.add_fault("list", "hold", task_id=theirs[0], release=answer)
            await until(lambda: any(r.fault == "hold" for r in fake.requests), "a poll of its jobs in flight", 10)
            frozen.freeze()
            try:
                fake.render_seconds = 0.0  # every render ends while it is frozen
                rows = await until_journal(
                    database_url,
                    lambda rows: len(rows) == count and not any(r.has_work for r in rows),
                    "the other replica takes the frozen one's jobs over and saves every video",
                    LEASE_SECONDS * 4 + 10,
                )
                answer.set()  # the held poll is answered now: "succeeded", with the video's URL
                await until(
                    lambda: any(r.fault == "hold" and r.status == 200 for r in fake.requests), "the poll answered", 5
                )
            finally:
                frozen.thaw()
            # Thawed: it reads that answer, and each of its jobs wakes (a renewal due long ago); each must stand
            # down (it logs so), or it fetches a video again (which ends the wait, and fails the test).
            await until(
                lambda: (
                    frozen.log.read_text().count("leaving it to that one") >= len(theirs)
                    or any(fake.downloads_of(t) > 1 for t in theirs)
                ),
                "the thawed replica learns from the journal that each of its jobs is another's now",
                15,
            )
            after = await journal(database_url)
            alive = [frozen.process.returncode, other.process.returncode]
        downloads = {t: fake.downloads_of(t) for t in task_ids}
    assert downloads == dict.fromkeys(task_ids, 1), (downloads, theirs)
    assert [(r.task_id, r.status, r.data["video_path"], r.data["version"]) for r in after] == [
        (r.task_id, r.status, r.data["video_path"], r.data["version"]) for r in rows
    ], "the thawed replica wrote over the new holder"
    paths = sorted(Path(r.data["video_path"]) for r in after)
    assert all(path.read_bytes() == mp4_bytes() for path in paths)
    assert sorted(cluster.videos.glob("*.mp4")) == paths
    assert not [p.name for p in cluster.videos.iterdir() if p.name.endswith(".part")]
    assert alive == [None, None]


async def test_a_replica_that_lost_its_lease_mid_download_stops_the_download_and_leaves_no_partial_file(
    tmp_path: Path, database_url: str
) -> None:
    """A replica is frozen half-way through streaming its videos (large ones, into partial files) for longer than
    its leases; the other replica takes the jobs over and saves them. Thawed, the first learns it lost the leases:
    its downloads stop, its partial files are removed by itself (no restart, no sweep), and nothing it writes
    lands over the new holder."""
    count = 6
    async with (
        running_stalling_fake_ark(render_seconds=600.0) as fake,
        running_cluster(
            tmp_path, base_url=fake.base_url, database_url=database_url, replicas=2, lease_seconds=LEASE_SECONDS
        ) as cluster,
    ):
        with anyio.fail_after(90):
            async with mcp_client(cluster.url, "alice") as alice:
                task_ids = [_data(await alice.call_tool("generate_video", {"prompt": f"p{i}", "wait": False}))
                            ["task_id"] for i in range(count)]  # fmt: skip
            await until(lambda: all(fake.polls_of(t) >= 1 for t in task_ids), "every job followed", 15)
            frozen, other = cluster.replicas
            owners = _owner_names(await journal(database_url), cluster)
            theirs = [t for t in task_ids if owners[t] == frozen.name]
            assert theirs and len(theirs) < count, owners
            fake.stall.update(dict.fromkeys(theirs, 120.0))  # its downloads stop half-way for longer than the test
            fake.render_seconds = 0.0
            await until(
                lambda: len(_parts(cluster.videos, frozen.pid)) == len(theirs),
                "the replica is streaming each of its videos into a partial file",
                15,
            )
            frozen.freeze()
            try:
                rows = await until_journal(
                    database_url,
                    lambda rows: len(rows) == count and not any(r.has_work for r in rows),
                    "the other replica takes the jobs over and saves every video",
                    LEASE_SECONDS * 4 + 15,
                )
            finally:
                frozen.thaw()
            await until(
                lambda: not _parts(cluster.videos), "the thawed replica stops and removes its partial files", 15
            )
            after = await journal(database_url)
            alive = [frozen.process.returncode, other.process.returncode]
    assert [(r.task_id, r.status, r.data["video_path"], r.data["version"]) for r in after] == [
        (r.task_id, r.status, r.data["video_path"], r.data["version"]) for r in rows
    ], "the thawed replica wrote over the new holder"
    paths = sorted(Path(r.data["video_path"]) for r in after)
    assert all(path.read_bytes() == large_mp4_bytes() for path in paths)
    assert sorted(cluster.videos.glob("*.mp4")) == paths
    # Its cut downloads, then one complete download each by the new holder; the others' once.
    assert {t: len(download_times(fake, t)) for t in task_ids} == {t: 2 if t in theirs else 1 for t in task_ids}
    assert alive == [None, None]


def _parts(videos: Path, pid: int | None = None) -> list[str]:
    """The partial downloads in the output directory (of one process, or of any)."""
    import re

    of = re.compile(rf"\.[A-Za-z0-9_]+-{pid if pid is not None else '[0-9]+'}-[0-9a-f]{{8}}\.part$")  # host-pid-nonce
    return sorted(p.name for p in videos.iterdir() if of.search(p.name)) if videos.is_dir() else []


async def test_a_replica_cut_off_from_the_database_never_fetches_a_video_another_took_over(
    tmp_path: Path, postgres_server: PostgresServer, database_url: str
) -> None:
    """A replica follows its renders when the network between it and the database is cut (the provider is still
    in reach) for longer than its leases; the other replica takes the jobs over, and then the renders end. The cut
    one sees "succeeded" in its own polls, but cannot confirm its lease, so it fetches nothing; once the link is
    back it learns the jobs are another's and stands down. Every video is fetched exactly once."""
    from tests.fakes.replicas import replica_env, running_database_link, start_replica, write_tokens_file

    count = 6
    write_tokens_file(tmp_path / "tokens.json")
    async with (
        running_fake_ark(render_seconds=600.0) as fake,
        running_database_link(postgres_server.socket_dir) as link,
    ):

        def env(name: str, url: str) -> dict[str, str]:
            return replica_env(
                tmp_path, name, base_url=fake.base_url, database_url=url, poll_interval=0.5,
                lease_seconds=LEASE_SECONDS,
            )  # fmt: skip

        cut = await start_replica(tmp_path, "cut", env("cut", link.url(database_url)))
        other = await start_replica(tmp_path, "other", env("other", database_url))
        try:
            with anyio.fail_after(120):
                async with mcp_client(cut.url, "alice") as alice:
                    task_ids = [_data(await alice.call_tool("generate_video", {"prompt": f"p{i}", "wait": False}))
                                ["task_id"] for i in range(count)]  # fmt: skip
                await until(lambda: all(fake.polls_of(t) >= 2 for t in task_ids), "every job followed", 15)
                link.cut()
                await until_journal(
                    database_url,
                    lambda rows: all(r.owner_pid == other.pid for r in rows),
                    "the other replica takes every job over once the cut one's leases run out",
                    LEASE_SECONDS * 4 + 10,
                )
                fake.render_seconds = 0.0  # every render ends now; both replicas' polls say so
                rows = await until_journal(
                    database_url,
                    lambda rows: len(rows) == count and not any(r.has_work for r in rows),
                    "the other replica saves every video",
                    30,
                )

                # The cut replica polls on (it still believes it holds the jobs), sees them succeed and goes to
                # fetch them: it must first confirm its lease, which it cannot (it logs that the journal is
                # unavailable), or, wrongly, it fetches them (which ends the wait, and fails the test).
                def tried_each() -> bool:
                    log = cut.log.read_text()
                    return all(f"working on {t}: The task journal" in log for t in task_ids)

                await until(
                    lambda: tried_each() or any(fake.downloads_of(t) > 1 for t in task_ids),
                    "the cut replica sees each render end and tries to go on",
                    45,
                )
                link.restore()
                await until(
                    lambda: (
                        cut.log.read_text().count("leaving it to that one") >= count
                        or any(fake.downloads_of(t) > 1 for t in task_ids)
                    ),
                    "the cut replica, back in touch, learns each job is another's now",
                    60,
                )
                after = await journal(database_url)
                alive = [cut.process.returncode, other.process.returncode]
        finally:
            for replica in (cut, other):
                await replica.stop()
    downloads = {t: fake.downloads_of(t) for t in task_ids}
    assert downloads == dict.fromkeys(task_ids, 1), downloads
    assert [(r.task_id, r.status, r.data["video_path"], r.data["version"]) for r in after] == [
        (r.task_id, r.status, r.data["video_path"], r.data["version"]) for r in rows
    ], "the cut replica wrote over the new holder"
    assert alive == [None, None]


async def test_a_job_reopened_through_one_replica_is_not_answered_as_settled_by_another(
    tmp_path: Path, database_url: str
) -> None:
    """A video is saved and its job settled; replica A has read it settled (its cache holds it). An identical call
    through replica B asks for the last frame too, which re-opens the job. A's get_task_status(wait=true) must wait
    for that frame (slowed down at the provider), not answer at once from its settled copy."""
    async with (
        running_fake_ark(render_seconds=0.2) as fake,
        running_cluster(
            tmp_path, base_url=fake.base_url, database_url=database_url, replicas=2, lease_seconds=LEASE_SECONDS
        ) as cluster,
    ):
        a, b = cluster.replicas
        with anyio.fail_after(60):
            async with mcp_client(a.url, "alice") as alice:
                first = _data(await alice.call_tool("generate_video", {"prompt": "a lighthouse", "wait": True}))
                task_id = first["task_id"]
                assert first["video_path"] and not first.get("last_frame_path")
                seen = _data(await alice.call_tool("get_task_status", {"task_id": task_id}))
                assert seen["status"] == "succeeded" and not seen.get("last_frame_path")
            fake.add_fault("frame", "slow", delay=2.0)
            async with mcp_client(b.url, "alice") as alice:
                again = _data(
                    await alice.call_tool(
                        "generate_video", {"prompt": "a lighthouse", "return_last_frame": True, "wait": False}
                    )
                )
            async with mcp_client(a.url, "alice") as alice:
                waited = _data(await alice.call_tool("get_task_status", {"task_id": task_id, "wait": True}))
    assert again["reused_existing"] is True and again["task_id"] == task_id
    assert waited.get("last_frame_path"), waited
    assert Path(waited["last_frame_path"]).read_bytes() == png_bytes()
    assert fake.creates == 1 and fake.downloads_of(task_id) == 1
