"""#8 replicas: the same 500 generate_video calls through 1, 2 and 3 `serve --http` replicas on one PostgreSQL
journal, behind the round-robin TCP proxy of tests/replicas.py (every request a connection of its own, so calls
spread over the replicas), against the sandbox in its own process (`seedance-mcp sandbox`, Ark dialect, renders of
10 s). Each size gets a fresh database on one throwaway PostgreSQL server (tests/postgres_server.py), a fresh
sandbox and fresh directories; 20 clients of two principals send 25 calls each, all at once.

Figures per size, as ratios to one replica (the machines are shared and noisy; the proxy and the clients run in
this process, the replicas and the sandbox in their own): calls answered per second (first call to last answer),
jobs settled per second (first call to the last job settled in the journal), provider requests per job (creates,
status and list polls, downloads, as the sandbox counted them), and the replicas' CPU per job (from /proc).
Target: at every size each job is created and saved once; provider requests per job with 2 and 3 replicas at most
1.25 × one replica's (more replicas must not mean more polling); jobs per second with 3 replicas at least 0.8 × one
replica's (on 2 cores the replicas share the CPUs, so no speed-up is expected: only no collapse).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

from bench.common import Row, cpu_seconds, machine, sandbox_process, sandbox_stats

JOBS = 500
CLIENTS = 20
RENDER_SECONDS = 10.0
SIZES = (1, 2, 3)
REQUEST_RATIO_LIMIT = 1.25
THROUGHPUT_FLOOR = 0.8


@dataclass
class Size:
    replicas: int
    calls_per_second: float
    jobs_per_second: float
    requests_per_job: float
    cpu_ms_per_job: float
    creates: int
    saved: int
    settled: int
    failures: list[str]
    creates_per_replica: list[int]

    @property
    def once(self) -> bool:
        return self.creates == self.saved == self.settled == JOBS and not self.failures


def _saved(videos: Path) -> int:
    try:
        return sum(1 for entry in os.scandir(videos) if entry.name.endswith(".mp4"))
    except FileNotFoundError:
        return 0


async def _settled(database_url: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as db:
        row = await (await db.execute("SELECT count(*) FROM jobs WHERE NOT has_work")).fetchone()
    return int(row[0]) if row else 0


async def _one_size(replicas: int, root: Path, database_url: str) -> Size:
    from tests.replicas import mcp_client, provider_requests, running_cluster

    failures: list[str] = []
    with sandbox_process(render_seconds=RENDER_SECONDS) as sandbox:
        async with running_cluster(
            root,
            base_url=f"{sandbox}/api/v3",
            database_url=database_url,
            replicas=replicas,
            poll_interval=2.0,
            lease_seconds=30.0,
            SEEDANCE_POLL_INTERVAL_MAX="30",
            SEEDANCE_LOG_LEVEL="WARNING",
        ) as cluster:
            pids = [replica.pid for replica in cluster.replicas]

            async def client(index: int) -> None:
                async with mcp_client(cluster.url, ("alice", "bob")[index % 2]) as mcp:

                    async def call(j: int) -> None:
                        prompt = f"client {index}, job {j}: a paper boat on a rainy street"
                        result = await mcp.call_tool("generate_video", {"prompt": prompt, "wait": False})
                        if result.is_error:
                            failures.append(str(result.content)[:300])

                    async with anyio.create_task_group() as group:
                        for j in range(JOBS // CLIENTS):
                            group.start_soon(call, j)

            cpu_start = sum(cpu_seconds(pid) for pid in pids)
            started = time.perf_counter()
            async with anyio.create_task_group() as group:
                for index in range(CLIENTS):
                    group.start_soon(client, index)
            answered = time.perf_counter() - started
            settled = 0
            with anyio.fail_after(300 + 3 * RENDER_SECONDS):
                while settled < JOBS - len(failures):
                    await anyio.sleep(0.25)
                    settled = await _settled(database_url)
            done = time.perf_counter() - started
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_start
            creates_per_replica = [(await provider_requests(r)).get("create", 0) for r in cluster.replicas]
            stats = sandbox_stats(sandbox)
    requests = sum(int(stats[k]) for k in ("creates", "status_polls", "list_polls", "downloads"))  # type: ignore[call-overload]
    return Size(
        replicas=replicas,
        calls_per_second=JOBS / answered,
        jobs_per_second=JOBS / done,
        requests_per_job=requests / JOBS,
        cpu_ms_per_job=cpu / JOBS * 1000,
        creates=int(stats["creates"]),  # type: ignore[call-overload]
        saved=_saved(root / "videos"),
        settled=settled,
        failures=failures,
        creates_per_replica=creates_per_replica,
    )


async def measure() -> Row:
    import tempfile

    from tests.postgres_server import find_bindir, fresh_database, running_postgres

    what = f"replicas ({JOBS} jobs through 1, 2, 3 `serve --http` on one PostgreSQL, round-robin proxy)"
    target = (
        f"each job created and saved once; requests/job ≤ {REQUEST_RATIO_LIMIT} × 1 replica; "
        f"jobs/s at 3 ≥ {THROUGHPUT_FLOOR} × 1 replica"
    )
    bindir = find_bindir()
    if bindir is None:
        return Row(8, what, "not run: no PostgreSQL server binaries (initdb, pg_ctl)", target, False)
    sizes: list[Size] = []
    with running_postgres(bindir) as server, tempfile.TemporaryDirectory(prefix="seedance-bench-") as tmp:
        for replicas in SIZES:
            database_url = await fresh_database(server)
            sizes.append(await _one_size(replicas, Path(tmp) / f"r{replicas}", database_url))
            print(f"  {_describe(sizes[-1], sizes[0])}", file=sys.stderr, flush=True)
    one = sizes[0]
    ok = (
        all(size.once for size in sizes)
        and all(size.requests_per_job <= REQUEST_RATIO_LIMIT * one.requests_per_job for size in sizes)
        and sizes[-1].jobs_per_second >= THROUGHPUT_FLOOR * one.jobs_per_second
    )
    figure = "; ".join(_describe(size, one) for size in sizes)
    failures = [f for size in sizes for f in size.failures]
    return Row(8, what, figure, target, ok, note="; ".join(failures[:2]))


def _describe(size: Size, one: Size) -> str:
    text = (
        f"{size.replicas}: {size.jobs_per_second:.1f} jobs/s, {size.calls_per_second:.0f} calls/s, "
        f"{size.requests_per_job:.2f} provider requests/job, {size.cpu_ms_per_job:.1f} ms replica CPU/job, "
        f"{size.creates} created, {size.saved} saved"
    )
    if size.replicas > 1:
        text += (
            f" ({size.jobs_per_second / one.jobs_per_second:.2f} × jobs/s, "
            f"{size.calls_per_second / one.calls_per_second:.2f} × calls/s, "
            f"{size.requests_per_job / one.requests_per_job:.2f} × requests/job; "
            f"creates per replica {size.creates_per_replica})"
        )
    return text


if __name__ == "__main__":
    print(machine())
    print(anyio.run(measure))
