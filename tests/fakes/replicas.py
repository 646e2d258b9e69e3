"""Several real `seedance-mcp serve --http` replicas on one PostgreSQL journal, behind a round-robin TCP proxy.

Used by tests/e2e/test_replicas.py and bench/replicas.py:

- `RoundRobinProxy` / `running_proxy(ports)`: a loopback TCP proxy written with anyio. Each accepted connection goes
  to the next replica in turn (one refusing connections, e.g. a killed one, is skipped, as nginx's `max_fails`
  does) and bytes are piped both ways until both sides are done. Round robin is per connection, so clients made
  by `mcp_client` send `Connection: close`: every MCP request is a connection of its own, and consecutive requests
  of one client land on different replicas.
- `Replica` / `start_replica(...)`: one `python -m seedance_mcp serve --http --port N` subprocess, its stderr in
  `<tmp>/<name>.log`, ready once its `/readyz` answers 200 (journal open, provider reachable).
- `running_cluster(...)`: the fake provider's URL, one database URL, N replicas sharing it and one output
  directory (each with its own state directory), and the proxy in front.
- Readings: `provider_requests(replica)` (from its `/metrics`), `journal(database_url)` (the jobs table as the
  replicas left it), the poll-stream judgement of tests/e2e/test_two_servers.py generalised to any poll interval.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import struct
import subprocess
import sys
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
import httpx
import httpx2
from anyio.abc import SocketAttribute, SocketStream
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from seedance_mcp.principals import token_hash
from tests.fakes.fake_ark import TASKS, FakeArk, mp4_bytes
from tests.fakes.stdio_helpers import server_env

TOKENS = {
    "alice": "alice-token-0123456789abcdef",
    "bob": "bob-token-0123456789abcdef",
    "carol": "carol-token-0123456789abcdef",
}
"""The principals every cluster knows, and their bearer tokens."""
STATE_KEY = "replicas-shared-request-state-key-0123456789abcdef"
"""SEEDANCE_REQUEST_STATE_KEYS: the same ≥ 32-byte secret on every replica."""
API_KEY = "sk-test-SECRET-0123456789abcdef"


# -- the proxy -------------------------------------------------------------------------------------------------------


@dataclass
class RoundRobinProxy:
    """Accept on 127.0.0.1:`port`, hand each connection to the next upstream port that accepts it, pipe both ways."""

    upstreams: list[int]
    port: int = 0
    connections: list[int] = field(default_factory=list[int])
    """Connections handed to each upstream (by index)."""
    refused: list[int] = field(default_factory=list[int])
    """Connection attempts each upstream refused (it was down), skipped to the next."""
    errors: list[str] = field(default_factory=list[str])
    """Unexpected exceptions of the proxy itself (should stay empty)."""
    _next: int = 0

    def __post_init__(self) -> None:
        self.connections = [0] * len(self.upstreams)
        self.refused = [0] * len(self.upstreams)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def _connect(self) -> SocketStream | None:
        for _ in range(len(self.upstreams)):
            index = self._next % len(self.upstreams)
            self._next += 1
            try:
                stream = await anyio.connect_tcp("127.0.0.1", self.upstreams[index])
            except OSError:
                self.refused[index] += 1
                continue
            self.connections[index] += 1
            return stream
        return None

    async def handle(self, client: SocketStream) -> None:
        try:
            async with client:
                upstream = await self._connect()
                if upstream is None:
                    return  # every replica is down: the client sees the connection close
                async with upstream, anyio.create_task_group() as group:
                    group.start_soon(_pipe, client, upstream, group.cancel_scope)
                    group.start_soon(_pipe, upstream, client, group.cancel_scope)
        except Exception as exc:  # the proxy must not take its listener down; tests check this list
            self.errors.append(f"{type(exc).__name__}: {exc}")


_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ConnectionError, OSError)


async def _pipe(source: SocketStream, sink: SocketStream, scope: anyio.CancelScope) -> None:
    """Copy `source` to `sink` until `source` ends (then half-close `sink`); a broken side ends both directions."""
    try:
        async for chunk in source:
            await sink.send(chunk)
        await sink.send_eof()
    except _GONE:
        scope.cancel()


@asynccontextmanager
async def running_proxy(upstreams: Sequence[int]) -> AsyncGenerator[RoundRobinProxy]:
    proxy = RoundRobinProxy(list(upstreams))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            group.cancel_scope.cancel()


@dataclass
class DatabaseLink:
    """A TCP way to a PostgreSQL server's unix socket that a test can cut (a network partition between one replica
    and its database, the provider still in reach) and restore. Give the replica `url(database)`."""

    socket_path: Path
    port: int = 0
    cut_off: bool = False
    _scopes: set[anyio.CancelScope] = field(default_factory=set[anyio.CancelScope])

    def url(self, database_url: str) -> str:
        """`database_url` (a URL on the unix socket) pointed at this link instead."""
        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        parts = urlsplit(database_url)
        query = dict(parse_qsl(parts.query))
        query.update(host="127.0.0.1", port=str(self.port))
        return urlunsplit(parts._replace(query=urlencode(query)))

    def cut(self) -> None:
        """Every connection through the link dies at once, and new ones are closed as they come."""
        self.cut_off = True
        for scope in list(self._scopes):
            scope.cancel()

    def restore(self) -> None:
        self.cut_off = False

    async def handle(self, client: SocketStream) -> None:
        async with client:
            if self.cut_off:
                return
            try:
                upstream = await anyio.connect_unix(str(self.socket_path))
            except OSError:
                return
            async with upstream, anyio.create_task_group() as group:
                self._scopes.add(group.cancel_scope)
                group.start_soon(_pipe_any, client, upstream, group.cancel_scope)
                group.start_soon(_pipe_any, upstream, client, group.cancel_scope)
            self._scopes.discard(group.cancel_scope)


async def _pipe_any(source: Any, sink: Any, scope: anyio.CancelScope) -> None:
    try:
        async for chunk in source:
            await sink.send(chunk)
        await sink.send_eof()
    except _GONE:
        scope.cancel()


@asynccontextmanager
async def running_database_link(socket_dir: Path, port: int = 5432) -> AsyncGenerator[DatabaseLink]:
    """A `DatabaseLink` to the server whose socket is in `socket_dir`, on a free loopback port."""
    link = DatabaseLink(socket_dir / f".s.PGSQL.{port}")
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    link.port = listener.extra(SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, link.handle)
        try:
            yield link
        finally:
            group.cancel_scope.cancel()


# -- replicas --------------------------------------------------------------------------------------------------------


def write_tokens_file(path: Path) -> Path:
    path.write_text(json.dumps({name: {"token_sha256": token_hash(token)} for name, token in TOKENS.items()}))
    return path


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Replica:
    name: str
    port: int
    process: anyio.abc.Process
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no lease given back, a download cut wherever it was."""
        os.kill(self.pid, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP: the process stops where it is (a long GC pause, a VM migration), its leases running out."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: it carries on from where it stopped, believing for a moment that it still holds its jobs."""
        os.kill(self.pid, signal.SIGCONT)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.thaw()  # a frozen process would not act on the signal
            self.process.terminate()
            with anyio.move_on_after(8):
                await self.process.wait()
            if self.process.returncode is None:
                self.process.kill()
        with anyio.move_on_after(5):
            await self.process.wait()


def replica_env(
    root: Path,
    name: str,
    *,
    base_url: str,
    database_url: str,
    poll_interval: float,
    lease_seconds: float,
    **extra: str,
) -> dict[str, str]:
    variables = dict(
        SEEDANCE_STATE_DIR=str(root / f"state-{name}"),
        SEEDANCE_OUTPUT_DIR=str(root / "videos"),
        SEEDANCE_DATABASE_URL=database_url,
        SEEDANCE_HTTP_STATELESS="true",
        SEEDANCE_REQUEST_STATE_KEYS=STATE_KEY,
        SEEDANCE_TOKENS_FILE=str(root / "tokens.json"),
        SEEDANCE_PROVIDER="ark",
        SEEDANCE_BASE_URL=base_url,
        SEEDANCE_API_KEY=API_KEY,
        SEEDANCE_LEASE_SECONDS=str(lease_seconds),
        SEEDANCE_POLL_INTERVAL=str(poll_interval),
        SEEDANCE_POLL_INTERVAL_MAX=str(poll_interval),
        SEEDANCE_STARTUP_DELAY="0",
        SEEDANCE_LOG_LEVEL="INFO",
    )
    return server_env(root, **{**variables, **extra})


async def start_replica(
    root: Path, name: str, env: dict[str, str], *, ready_within: float = 30.0, ready_path: str = "/readyz"
) -> Replica:
    """Start `serve --http` on a free port and wait until its /readyz says the journal and provider answer (or, with
    `ready_path="/healthz"`, only until the process answers)."""
    port = free_port()
    log = root / f"{name}.log"
    with log.open("ab") as errlog:
        process = await anyio.open_process(
            [sys.executable, "-m", "seedance_mcp", "serve", "--http", "--port", str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errlog,
        )
    replica = Replica(name, port, process, log)
    try:
        with anyio.fail_after(ready_within):
            async with httpx.AsyncClient(timeout=5) as probe:
                while True:
                    if process.returncode is not None:
                        raise RuntimeError(f"replica {name} exited ({process.returncode}):\n{log.read_text()[-3000:]}")
                    try:
                        if (await probe.get(f"{replica.base}{ready_path}")).status_code == 200:
                            return replica
                    except httpx.TransportError:
                        pass
                    await anyio.sleep(0.1)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await replica.stop()
        raise


@dataclass
class Cluster:
    root: Path
    replicas: list[Replica]
    proxy: RoundRobinProxy
    database_url: str
    env_of: Callable[[str], dict[str, str]]
    every: list[Replica] = field(default_factory=list[Replica])
    """Every process started, the replaced ones too (all are stopped and reaped at the end)."""

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def videos(self) -> Path:
        return self.root / "videos"

    def logs(self) -> str:
        """Every replica's stderr (the tail), for an assertion message."""
        return "\n".join(f"--- {log.name}\n{log.read_text()[-5000:]}" for log in sorted(self.root.glob("*.log")))

    async def restart(self, index: int, name: str) -> Replica:
        """A new process in place of replica `index` (a new port, which the proxy now sends its turn to)."""
        replica = await start_replica(self.root, name, self.env_of(name))
        self.every.append(replica)
        self.replicas[index] = replica
        self.proxy.upstreams[index] = replica.port
        return replica


@asynccontextmanager
async def running_cluster(
    root: Path,
    *,
    base_url: str,
    database_url: str,
    replicas: int = 3,
    poll_interval: float = 0.5,
    lease_seconds: float = 3.0,
    leases: Mapping[str, float] | None = None,
    **extra: str,
) -> AsyncGenerator[Cluster]:
    """`replicas` servers on one journal and one output directory, started together, behind a round-robin proxy.
    `leases` gives some replicas (by name, `replica-0`…) a lease length of their own: a short one for the replica a
    test stops, a long one for those that must keep their jobs however starved of CPU the machine leaves them."""
    root.mkdir(parents=True, exist_ok=True)
    write_tokens_file(root / "tokens.json")

    def env_of(name: str) -> dict[str, str]:
        return replica_env(
            root,
            name,
            base_url=base_url,
            database_url=database_url,
            poll_interval=poll_interval,
            lease_seconds=(leases or {}).get(name, lease_seconds),
            **extra,
        )

    started: list[Replica] = []

    async def start(name: str) -> None:
        started.append(await start_replica(root, name, env_of(name)))

    try:
        async with anyio.create_task_group() as group:
            for index in range(replicas):
                group.start_soon(start, f"replica-{index}")
        first = sorted(started, key=lambda r: r.name)
        async with running_proxy([r.port for r in first]) as proxy:
            yield Cluster(root, first, proxy, database_url, env_of, every=started)
    finally:
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as group:
                for replica in started:
                    group.start_soon(replica.stop)


@asynccontextmanager
async def mcp_client(url: str, principal: str, **client_options: Any) -> AsyncGenerator[Client]:
    """An MCP client of `principal` whose every request is a connection of its own (`Connection: close`);
    `client_options` go to `mcp.Client` (e.g. `elicitation_callback`, `mode`)."""
    headers = {"Authorization": f"Bearer {TOKENS[principal]}", "Connection": "close"}
    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=60))
        yield await stack.enter_async_context(Client(streamable_http_client(url, http_client=http), **client_options))


# -- readings --------------------------------------------------------------------------------------------------------


async def provider_requests(replica: Replica) -> dict[str, int]:
    """What this replica sent the provider, by kind (create, status, list, cancel, download), from its /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(timeout=10, headers={"Authorization": f"Bearer {TOKENS['alice']}"}) as client:
        answer = await client.get(f"{replica.base}/metrics")
    answer.raise_for_status()
    text = answer.text
    counts: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "seedance_provider_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                kind = sample.labels["kind"]
                counts[kind] = counts.get(kind, 0) + int(sample.value)
    return counts


@dataclass(frozen=True)
class JournalRow:
    job_id: str
    task_id: str | None
    status: str
    principal: str
    has_work: bool
    lease_owner: str | None
    data: dict[str, Any]

    @property
    def owner_pid(self) -> int | None:
        """The pid in the lease owner (`host:pid:nonce`), if a process holds the job."""
        return int(self.lease_owner.split(":")[1]) if self.lease_owner else None


async def journal(database_url: str) -> list[JournalRow]:
    """Every job in the shared journal, read straight from PostgreSQL."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        cursor = await db.execute(
            "SELECT job_id, task_id, status, principal, has_work, lease_owner, data::text FROM jobs ORDER BY created_at"
        )
        rows = await cursor.fetchall()
    return [JournalRow(str(r[0]), r[1], str(r[2]), str(r[3]), bool(r[4]), r[5], json.loads(r[6])) for r in rows]


async def until(condition: Callable[[], bool], what: str, seconds: float, *, every: float = 0.05) -> None:
    """Wait (bounded) until `condition()` holds: a wait for an event, not a timing assertion."""
    try:
        with anyio.fail_after(seconds):
            while not condition():
                await anyio.sleep(every)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


async def until_journal(
    database_url: str, condition: Callable[[list[JournalRow]], bool], what: str, seconds: float
) -> list[JournalRow]:
    """Wait (bounded) until the journal's rows satisfy `condition`; those rows."""
    try:
        with anyio.fail_after(seconds):
            while True:
                rows = await journal(database_url)
                if condition(rows):
                    return rows
                await anyio.sleep(0.25)
    except TimeoutError:
        raise AssertionError(f"not within {seconds} s: {what}") from None


def poll_times(fake: FakeArk, task_id: str) -> list[float]:
    """When the fake read each poll of the task (alone, or within a list's `filter.task_ids`), in order."""
    single = f"{TASKS}/{task_id}"
    return sorted(
        r.time
        for r in fake.requests
        if r.method == "GET"
        and (r.path == single or (r.path == TASKS and task_id in r.query.get("filter.task_ids", [])))
    )


def download_times(fake: FakeArk, task_id: str) -> list[float]:
    """When the fake read each GET of the task's video, answered in full or not at all (e.g. cut by a kill)."""
    path = f"/files/{task_id}.mp4"
    return sorted(r.time for r in fake.requests if r.method == "GET" and r.path == path)


CLOCK_SLACK = 0.01
"""Seconds: the replicas sleep on the monotonic clock, the fake stamps with the wall clock (slewed, never stepped)."""


def early_polls(fake: FakeArk, task_id: str, interval: float) -> list[tuple[float, float]]:
    """The polls of the task the fake read less than `interval` after it began answering the one before (or the
    create): when each was read, and how much sooner than `interval` it came.

    One follower sends a poll, waits for its answer, then sleeps at least the poll interval; the status batcher
    only ever delays a poll, and the first poll comes at least that long after the create. The fake stamps when it
    begins an answer (`Recorded.answered`, before any byte leaves) and when it reads a request (`Recorded.time`,
    after it arrived), so one follower's next poll is read at least `interval` after the previous answer's stamp,
    however loaded the machine: load only delays the reading. A second follower of the task (another replica, or a
    second loop in one) shows as a poll read sooner; so does a hand-over's first poll, which is immediate."""
    single = f"{TASKS}/{task_id}"
    polls = sorted(
        (
            r
            for r in fake.requests
            if r.method == "GET"
            and (r.path == single or (r.path == TASKS and task_id in r.query.get("filter.task_ids", [])))
        ),
        key=lambda r: r.time,
    )
    answered: float | None = fake.tasks[task_id].created_at  # stamped while the create was handled, before answering
    early: list[tuple[float, float]] = []
    for poll in polls:
        if answered is not None and poll.time < answered + interval - CLOCK_SLACK:
            early.append((poll.time, round(answered + interval - poll.time, 3)))
        answered = poll.answered  # None: never answered (a cut connection), so the next poll may come any time
    return early


def poll_stream_problems(
    fake: FakeArk, task_ids: Sequence[str], *, interval: float, hand_overs: int = 0
) -> dict[str, str]:
    """The tasks polled as by more than one follower: more early polls (`early_polls`) than hand-overs."""
    wrong: dict[str, str] = {}
    for task_id in task_ids:
        early = early_polls(fake, task_id, interval)
        if len(early) > hand_overs:
            wrong[task_id] = (
                f"{fake.polls_of(task_id)} polls, {len(early)} read sooner than {interval} s after the answer before "
                f"(by {[by for _, by in early]} s); one follower makes none, a hand-over one"
            )
    return wrong


# -- a fake Ark whose downloads can stop half-way --------------------------------------------------------------------


LARGE_VIDEO_BYTES = 6 * 1024 * 1024
"""Larger than the size the server receives whole in memory (`providers.client.SMALL_BODY`): such a video streams
into a partial file on disk, where a kill can cut it."""


@functools.cache
def large_mp4_bytes(size: int = LARGE_VIDEO_BYTES) -> bytes:
    """A valid MP4 of `size` bytes: the sample clip, then a top-level `free` box of zeros (boxes still add up)."""
    sample = mp4_bytes()
    padding = size - len(sample)
    return sample + struct.pack(">I", padding) + b"free" + bytes(padding - 8)


@dataclass
class StallingFakeArk(FakeArk):
    """The fake Ark, plus: every video it serves is `large_mp4_bytes()`, and the next download of a video named in
    `stall` sends its headers and half its body, then stops for that many seconds before the rest (once per task),
    so a replica is caught mid-stream with a partial file on disk."""

    stall: dict[str, float] = field(default_factory=dict[str, float])

    async def _send(self, stream: SocketStream, record: Any, response: Any, fault: Any, client_close: bool) -> bool:
        path = str(record.path)
        if record.method == "GET" and path.startswith("/files/") and path.endswith(".mp4") and response.status == 200:
            response.body = large_mp4_bytes()
            delay = self.stall.pop(path.removeprefix("/files/").removesuffix(".mp4"), None)
            if delay is not None:
                stream = cast("SocketStream", _StallHalfway(stream, delay))
        return await super()._send(stream, record, response, fault, client_close)


class _StallHalfway:
    """Passes the response head on, then sends half of the body, waits, and sends the rest."""

    def __init__(self, stream: SocketStream, delay: float) -> None:
        self._stream = stream
        self._delay = delay
        self._head_sent = False

    async def send(self, item: bytes) -> None:
        if not self._head_sent:
            self._head_sent = True
            await self._stream.send(item)
            return
        half = len(item) // 2
        await self._stream.send(item[:half])
        await anyio.sleep(self._delay)
        await self._stream.send(item[half:])


@asynccontextmanager
async def running_stalling_fake_ark(**settings: Any) -> AsyncGenerator[StallingFakeArk]:
    """As `running_fake_ark`, with a `StallingFakeArk`."""
    fake = StallingFakeArk(**settings)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    fake.url = f"http://127.0.0.1:{listener.extra(SocketAttribute.local_port)}"
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, fake.handle_connection)
        try:
            yield fake
        finally:
            group.cancel_scope.cancel()
