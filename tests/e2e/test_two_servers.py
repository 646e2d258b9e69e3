"""Several real server processes on one journal: each call is paid once, each job followed and saved once.

Every server here is a real `python -m seedance_mcp` subprocess over stdio, all sharing one SEEDANCE_STATE_DIR
and one SEEDANCE_OUTPUT_DIR, in front of the socket-level fake Ark (`tests/fakes/fake_ark.py`), which counts what it
is asked: creates, polls of each task (alone or in a list), downloads of each video.

How "one poll stream per task" is judged (`tests.fakes.replicas.early_polls`): a process following a task sends a poll,
waits for its answer, then sleeps at least `POLL_INTERVAL` before the next one (the interval equals the cap here,
and Ark reports no percent, so the adaptive policy never shortens it; the status batcher only ever delays a poll),
and its first poll comes at least that long after the create. The fake stamps when it begins each answer and when
it reads each request, so one follower's polls are read at least an interval after the answer before, however
loaded the machine (load only delays the reading). Two processes following one task independently interleave their
polls, and a poll read sooner than that shows it; a hand-over to another process may show one (its first poll is
immediate).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.conftest import SECRET_KEY, text_of
from tests.fakes.fake_ark import TASKS, FakeArk, running_fake_ark
from tests.fakes.replicas import early_polls
from tests.fakes.stdio_helpers import server_env, stdio_transport

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.subprocess,
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find a server process"),
]

logger = logging.getLogger(__name__)

POLL_INTERVAL = 0.25
LEASE_SECONDS = 3.0
"""Only for server A in the tests that kill or stop it, so B takes its jobs over within seconds."""
KEEPER_LEASE_SECONDS = 30.0
"""Every other server's (the default): with 3 s, a server starved of CPU for half a lease on a loaded machine sees a
live job taken over, then polled by two and downloaded twice."""
ROLE_VARIABLE = "TWO_SERVERS_TEST_ROLE"
"""Not a SEEDANCE_* name (the server ignores it): marks each subprocess so the test can find its pid."""


def _env(tmp_path: Path, fake: FakeArk, role: str, lease_seconds: float) -> dict[str, str]:
    return server_env(
        tmp_path,
        SEEDANCE_PROVIDER="ark",
        SEEDANCE_BASE_URL=fake.base_url,
        SEEDANCE_API_KEY=SECRET_KEY,
        SEEDANCE_POLL_INTERVAL=str(POLL_INTERVAL),
        SEEDANCE_POLL_INTERVAL_MAX=str(POLL_INTERVAL),
        SEEDANCE_STARTUP_DELAY="0",
        SEEDANCE_LEASE_SECONDS=str(lease_seconds),
        **{ROLE_VARIABLE: _role_marker(tmp_path, role)},
    )


def _role_marker(tmp_path: Path, role: str) -> str:
    return f"{tmp_path}#{role}"


@asynccontextmanager
async def _server(
    tmp_path: Path, fake: FakeArk, role: str, lease_seconds: float = KEEPER_LEASE_SECONDS
) -> AsyncGenerator[Client]:
    """A server subprocess on the shared journal, its stderr in `<tmp>/<role>.log`, its runtime already open."""
    with (tmp_path / f"{role}.log").open("w") as errlog:
        async with Client(stdio_transport(_env(tmp_path, fake, role, lease_seconds), errlog)) as client:
            # Any tool call opens the runtime: the journal, and the worker's first claim of jobs nobody holds.
            warm = await client.call_tool("list_tasks", {})
            assert warm.is_error is False, text_of(warm)
            yield client


def _pid_of(tmp_path: Path, role: str) -> int:
    """The pid of the seedance-mcp process started for `role` (found by its environment)."""
    marker = f"{ROLE_VARIABLE}={_role_marker(tmp_path, role)}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"seedance_mcp" in cmdline and marker in environ:
            found.append(int(entry.name))
    assert len(found) == 1, f"expected one process for {role}, found {found}"
    return found[0]


def _logs(tmp_path: Path) -> str:
    """Every server's stderr, for an assertion message."""
    parts = [f"--- {log.name}\n{log.read_text()[-6000:]}" for log in sorted(tmp_path.glob("*.log"))]
    return "\n".join(parts)


def _data(result: Any) -> dict[str, Any]:
    assert result.is_error is False, text_of(result)
    return result.structured_content or {}


def _poll_times(fake: FakeArk, task_id: str) -> list[float]:
    single = f"{TASKS}/{task_id}"
    return [
        r.time
        for r in fake.requests
        if r.method == "GET"
        and (r.path == single or (r.path == TASKS and task_id in r.query.get("filter.task_ids", [])))
    ]


def _assert_one_poll_stream(fake: FakeArk, task_ids: list[str], *, hand_overs: int = 0) -> None:
    """Each task was polled as one follower at a time polls: never sooner than an interval after an answer."""
    early = {task_id: early_polls(fake, task_id, POLL_INTERVAL) for task_id in task_ids}
    logger.info("polls per task %s, read early %s", [fake.polls_of(t) for t in task_ids], list(early.values()))
    wrong = {task_id: found for task_id, found in early.items() if len(found) > hand_overs}
    assert not wrong, f"polled as by more than one follower (read at, seconds early): {wrong}"


def _assert_saved_once(fake: FakeArk, videos: Path, results: list[dict[str, Any]]) -> None:
    assert [r["status"] for r in results] == ["succeeded"] * len(results), results
    paths = sorted(Path(r["video_path"]) for r in results)
    assert all(path.is_file() and path.read_bytes()[4:8] == b"ftyp" for path in paths)
    assert sorted(videos.glob("*.mp4")) == paths
    assert not [p.name for p in videos.iterdir() if p.name.endswith(".part")]
    assert {r["task_id"]: fake.downloads_of(r["task_id"]) for r in results} == {r["task_id"]: 1 for r in results}


async def _until(condition: Callable[[], bool], what: str, seconds: float) -> None:
    """Wait (bounded) until `condition()` holds: a wait for an event the fake records, not a timing assertion."""
    try:
        with anyio.fail_after(seconds):
            while not condition():
                await anyio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


async def _send(results: dict[str, Any], name: str, client: Client, call: dict[str, Any]) -> None:
    results[name] = await client.call_tool("generate_video", call)


async def test_identical_calls_sent_at_the_same_moment_by_two_servers_pay_once(tmp_path: Path) -> None:
    """The same generate_video call through two servers at once creates one task; the other gets that same job."""
    trials = 15
    outcomes = {"reused": 0, "duplicate_in_flight": 0}
    async with running_fake_ark(render_seconds=30.0) as fake:
        with anyio.fail_after(40):
            async with _server(tmp_path, fake, "A") as a, _server(tmp_path, fake, "B") as b:
                for trial in range(trials):
                    call = {"prompt": f"the same call, trial {trial}", "wait": False}
                    results: dict[str, Any] = {}
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(_send, results, "A", a, call)
                        tg.start_soon(_send, results, "B", b, call)

                    assert fake.creates == trial + 1, (trial, {k: text_of(v) for k, v in results.items()})
                    paid = [
                        name for name, r in results.items() if not r.is_error and not _data(r).get("reused_existing")
                    ]
                    assert len(paid) == 1, {k: text_of(v) for k, v in results.items()}
                    first = _data(results[paid[0]])
                    other_name = "B" if paid[0] == "A" else "A"
                    other = results[other_name]
                    if other.is_error:
                        # Acceptable only while the first create was still in flight: the earlier job is then
                        # `submitting`, and the refusal names it; it must end up with the paid task.
                        message = text_of(other)
                        found = re.search(r"job `(job-[^`]+)`", message)
                        assert found is not None and found[1] == first["job_id"], message
                        assert "`submitting`" in message, message
                        via_other = _data(
                            await (b if other_name == "B" else a).call_tool(
                                "get_task_status", {"task_id": first["job_id"]}
                            )
                        )
                        assert via_other["task_id"] == first["task_id"]
                        outcomes["duplicate_in_flight"] += 1
                    else:
                        reused = _data(other)
                        assert reused["reused_existing"] is True
                        assert (reused["task_id"], reused["job_id"]) == (first["task_id"], first["job_id"])
                        outcomes["reused"] += 1
                    assert first["task_id"] in fake.tasks
    assert fake.creates == trials, _logs(tmp_path)
    assert sum(outcomes.values()) == trials
    logger.info("two servers, identical calls: %s", outcomes)  # the split is timing-dependent


async def test_two_servers_follow_each_job_once_and_download_it_once(tmp_path: Path) -> None:
    """20 jobs submitted through two servers: each is polled by one of them and saved exactly once."""
    count = 20
    render = 3.0
    videos = tmp_path / "videos"
    async with running_fake_ark(render_seconds=render) as fake:
        with anyio.fail_after(45):
            async with _server(tmp_path, fake, "A") as a, _server(tmp_path, fake, "B") as b:
                clients = [a, b]
                submitted: list[tuple[int, dict[str, Any]]] = []

                async def submit(i: int) -> None:
                    result = await clients[i % 2].call_tool(
                        "generate_video", {"prompt": f"two servers, job {i}", "wait": False}
                    )
                    submitted.append((i, _data(result)))

                async with anyio.create_task_group() as tg:
                    for i in range(count):
                        tg.start_soon(submit, i)
                assert fake.creates == count

                finished: list[dict[str, Any]] = []

                async def wait_for(i: int, handle: str) -> None:
                    # Through the server that did NOT submit it: that one only reads the journal.
                    result = await clients[(i + 1) % 2].call_tool("get_task_status", {"task_id": handle, "wait": True})
                    finished.append(_data(result))

                async with anyio.create_task_group() as tg:
                    for i, job in submitted:
                        tg.start_soon(wait_for, i, job["task_id"])
    assert len(finished) == count
    _assert_saved_once(fake, videos, finished)
    _assert_one_poll_stream(fake, [job["task_id"] for job in finished])
    assert fake.creates == count


async def test_a_killed_servers_jobs_are_finished_by_the_other_once(tmp_path: Path) -> None:
    """SIGKILL the server that submitted and follows the jobs: the other takes them over once its leases expire."""
    count = 4
    videos = tmp_path / "videos"
    # Renders last until the test lets them finish (render_seconds = 0), so the kill is surely mid-render.
    async with running_fake_ark(render_seconds=600.0) as fake:
        with anyio.fail_after(40):
            async with _server(tmp_path, fake, "B") as b:
                async with _server(tmp_path, fake, "A", LEASE_SECONDS) as a:
                    handles: list[str] = []
                    for i in range(count):
                        result = await a.call_tool(
                            "generate_video", {"prompt": f"killed mid-render {i}", "wait": False}
                        )
                        handles.append(_data(result)["task_id"])
                    await _until(lambda: all(fake.polls_of(h) >= 2 for h in handles), "A follows its jobs", 10)
                    os.kill(_pid_of(tmp_path, "A"), signal.SIGKILL)
                    killed_wall = time.time()
                # A poll the fake reads well after the kill comes from B (A's last bytes may still be in transit).
                after = killed_wall + 0.5

                def taken_over() -> bool:
                    return all(any(t > after for t in _poll_times(fake, h)) for h in handles)

                await _until(taken_over, "B takes the jobs over", LEASE_SECONDS + 6)
                first_takeover = min(min(t for t in _poll_times(fake, h) if t > after) for h in handles)
                assert fake.downloads_of(handles[0]) == 0 and not list(videos.glob("*.mp4"))
                fake.render_seconds = 0.0  # every task succeeds now
                results = [
                    _data(await b.call_tool("get_task_status", {"task_id": handle, "wait": True})) for handle in handles
                ]
    # A renews its leases every LEASE_SECONDS / 3, so they outlive it by about two thirds of a lease or more:
    # B must not have taken the jobs before then (a third is asserted, leaving room for late renewals).
    assert first_takeover - killed_wall >= LEASE_SECONDS / 3, (first_takeover - killed_wall, _logs(tmp_path))
    assert fake.creates == count
    _assert_saved_once(fake, videos, results)
    _assert_one_poll_stream(fake, handles, hand_overs=1)


async def test_a_server_restarted_while_another_follows_its_jobs_leaves_them_to_that_one(tmp_path: Path) -> None:
    """A stops, B takes its jobs, A starts again on the same journal: nothing is polled or downloaded twice."""
    count = 5
    videos = tmp_path / "videos"
    async with running_fake_ark(render_seconds=600.0) as fake:
        with anyio.fail_after(45):
            async with AsyncExitStack() as stack:
                await stack.enter_async_context(_server(tmp_path, fake, "B"))
                async with _server(tmp_path, fake, "A", LEASE_SECONDS) as a:
                    handles = [
                        _data(await a.call_tool("generate_video", {"prompt": f"restart {i}", "wait": False}))["task_id"]
                        for i in range(count)
                    ]
                    await _until(lambda: all(fake.polls_of(h) >= 1 for h in handles), "A follows its jobs", 10)
                # A stopped (its stdin closed). Whatever it left, B must now be the one polling.
                stopped = time.time() + 0.5
                await _until(
                    lambda: all(any(t > stopped for t in _poll_times(fake, h)) for h in handles),
                    "B takes the jobs over",
                    LEASE_SECONDS + 6,
                )
                # The restart: a new process on the same state and output dirs, while B follows every job.
                again = await stack.enter_async_context(_server(tmp_path, fake, "A-again", LEASE_SECONDS))
                restarted = time.time()
                # The new process claimed at start-up (before its first tool call was answered) and claims again
                # every LEASE_SECONDS / 3; had it taken a job, its polls would now add to B's. Let B poll a while.
                await _until(
                    lambda: all(sum(t > restarted for t in _poll_times(fake, h)) >= 8 for h in handles),
                    "B keeps polling after the restart",
                    10,
                )
                assert all(fake.status_of(fake.tasks[h]) == "running" for h in handles)
                fake.render_seconds = 0.0
                results = [
                    _data(await again.call_tool("get_task_status", {"task_id": handle, "wait": True}))
                    for handle in handles
                ]
    assert fake.creates == count
    _assert_saved_once(fake, videos, results)
    # One hand-over (A to B); the restarted process never polls, so from its start on polls are B's alone.
    _assert_one_poll_stream(fake, handles, hand_overs=1)
    after_restart = {h: [e for e in early_polls(fake, h, POLL_INTERVAL) if e[0] > restarted] for h in handles}
    assert not any(after_restart.values()), after_restart
