"""#6 journal growth: what a long history costs. Journals of 1k, 10k and 100k finished jobs (80 % succeeded, 15 %
failed, 5 % cancelled, spread over 90 days, each with realistic stored fields) plus 20 still rendering, written
straight into the file `SqliteTaskStore.open` created. For each size, fresh stdio server processes
(`python -m seedance_mcp`, SEEDANCE_PROVIDER=sandbox, SEEDANCE_STARTUP_DELAY=0) spoken to in raw JSON-RPC:

- time from spawning the process to the answer of its first `tools/call list_tasks` (after `initialize`): the
  journal is opened and the jobs with work left claimed on that path (median of alternating runs);
- peak RSS of the server (VmHWM from /proc at the end of a session, worst run);
- `list_tasks(status="succeeded", limit=20)` latency as the client sees it over stdio (median of repeated calls):
  the status with the most rows (80 %), so any cost that grows with the matching rows shows; `list_tasks` counts
  nothing (it fetches one row past the limit to say whether more match);
- `get_task_status` of a settled job from the middle of the history: the first call (a journal read) and the
  median of repeats (the settled-job cache).

The file cache is warm (the journal was just written): this measures the server's work, not the disk.
"""

from __future__ import annotations

import compileall
import json
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from bench.common import ROOT, Row, clean_env, rss_kb, temp_dirs

SIZES = (1_000, 10_000, 100_000)
UNSETTLED = 20
RUNS = 5
"""Server processes per size, alternating between sizes so drift on a shared machine hits each alike."""
CALLS = 41
"""Repeated list_tasks / get_task_status calls in a session, for the medians."""
STARTUP_LIMIT = 1.5
"""Target: start-up and peak RSS at 100k jobs within this factor of the 1k figures."""
LIST_LIMIT_MS = 20.0
"""Target: list_tasks(status=...) at 100k jobs."""
LISTED_STATUS = "succeeded"
"""The status list_tasks is timed with: the one with the most rows."""
HISTORY_DAYS = 90
PROTOCOL = "2025-11-25"


def _row_values(job: Any, index: int, now: float, span: float, size: int) -> tuple[object, ...]:
    """One settled job's stored row, from a template: status by position, times spread over `span` seconds."""
    created = now - span + span * index / size
    kind = index % 20
    data = dict(job)
    data["job_id"] = f"job-{time.strftime('%Y%m%d%H%M%S', time.gmtime(created))}-{index:08x}"
    data["fingerprint"] = uuid.uuid4().hex + uuid.uuid4().hex
    data["created_at"], data["updated_at"] = created, created + 75.0
    data["submitted_at"], data["finished_at"] = created + 0.4, created + 70.0
    data["prompt"] = f"#{index}: " + job["prompt"]
    task_id = f"cgt-{time.strftime('%Y%m%d%H%M%S', time.gmtime(created))}-{index:08x}"
    data["task_id"] = task_id
    data["version"] = 4
    if kind < 16:
        data["status"] = "succeeded"
        data["video_path"] = f"/home/user/Videos/seedance/seedance-{index:08x}-{task_id}.mp4"
    elif kind < 19:
        data["status"] = "failed"
        data["error_code"] = "OutputVideoSensitiveContentDetected"
        data["error_message"] = "The output video may contain sensitive information. Request id: 0217…"
        data["video_url"] = data["video_url_expires_at"] = data["usage_tokens"] = None
    else:
        data["status"] = "cancelled"
        data["video_url"] = data["video_url_expires_at"] = data["usage_tokens"] = None
    return (
        data["job_id"],
        task_id,
        data["status"],
        data["fingerprint"],
        created,
        json.dumps(data),
        data["version"],
        0,
        None,
        0.0,
    )


async def build_journal(state: Path, size: int, unsettled: int = UNSETTLED) -> dict[str, str]:
    """`size` settled jobs and `unsettled` rendering ones in `<state>/jobs.sqlite3`; a few handles to query."""
    from seedance_mcp.journal.job import Job
    from seedance_mcp.journal.sqlite import SqliteTaskStore

    path = state / "jobs.sqlite3"
    store = await SqliteTaskStore.open(path)  # the schema, indexes and migrations exactly as the server makes them
    await store.close()
    now = time.time()
    template = Job(
        job_id="job-template",
        provider="ark",
        model="doubao-seedance-1-0-pro-250528",
        model_key="1.0-pro",
        prompt=(
            "A paper boat drifting down a rainy street at dusk, neon reflections in the puddles, the camera "
            "following low and slow, cinematic lighting, shallow depth of field --rs 720p --rt 16:9 --dur 5"
        ),
        status="succeeded",
        fingerprint="",
        created_at=now,
        updated_at=now,
        expected_render_seconds=60.0,
        progress=100.0,
        poll_count=9,
        video_url=(
            "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/doubao-seedance-1-0-pro/"
            "021753000000000000000000000000000000000000000000000000.mp4?X-Tos-Algorithm=TOS4-HMAC-SHA256"
            "&X-Tos-Credential=AKLTYjY0ZjM4NzY1ZjA0NDZkYjg0ZjM4NzY1ZjA0NDZkYjg%2F20250601%2Fcn-beijing%2Ftos"
            "%2Frequest&X-Tos-Date=20250601T000000Z&X-Tos-Expires=86400&X-Tos-Signature="
            "0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c&X-Tos-SignedHeaders=host"
        ),
        video_url_expires_at=now + 86400,
        resolution="720p",
        ratio="16:9",
        duration=5,
        seed=1234567,
        identity={"resolution": "720p", "ratio": "16:9", "duration": "5"},
        marker="seedance-mcp-0123456789abcdef",
        estimated_tokens=108900,
        usage_tokens=108900,
    ).model_dump(mode="json")
    span = HISTORY_DAYS * 86400.0
    insert = (
        "INSERT INTO jobs (job_id, task_id, status, fingerprint, created_at, data, version, has_work, "
        "lease_owner, lease_expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )

    def write() -> dict[str, str]:
        db = sqlite3.connect(path, isolation_level=None)
        try:
            db.execute("BEGIN")
            db.executemany(insert, (_row_values(template, i, now - 3600, span, size) for i in range(size)))
            for i in range(unsettled):
                # Rendering for a few seconds, expected to take minutes: the server claims them at start-up and
                # its first poll of each is due ~30 s later, after this bench is done with the process.
                data = dict(template)
                data.update(
                    job_id=f"job-rendering-{i:04d}",
                    task_id=f"cgt-rendering-{i:04d}",
                    fingerprint=uuid.uuid4().hex,
                    status="running",
                    created_at=now - 5,
                    updated_at=now - 5,
                    submitted_at=now,
                    finished_at=None,
                    expected_render_seconds=600.0,
                    progress=None,
                    video_url=None,
                    video_url_expires_at=None,
                    usage_tokens=None,
                    version=2,
                )
                row = (data["job_id"], data["task_id"], "running", data["fingerprint"], now - 5, json.dumps(data))
                db.execute(insert, (*row, 2, 1, None, 0.0))
            db.execute("COMMIT")
            middle = size // 2 - (size // 2) % 20  # a succeeded one (index % 20 == 0)
            (job_id, task_id) = db.execute(
                "SELECT job_id, task_id FROM jobs WHERE job_id LIKE ?", (f"%-{middle:08x}",)
            ).fetchone()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            db.close()
        return {"settled_job": str(job_id), "settled_task": str(task_id)}

    handles = await anyio.to_thread.run_sync(write)
    # The rows read back as the store's own jobs.
    check = await SqliteTaskStore.open(path)
    try:
        job = await check.get(handles["settled_task"])
        assert job is not None, handles
        assert job.settled, job
        assert not job.has_work, job
        rendering, more = await check.recent("running", 100)
        assert len(rendering) == unsettled, len(rendering)
        assert not more
        assert all(j.has_work for j in rendering), rendering
    finally:
        await check.close()
    return handles


class _Session:
    """A seedance-mcp stdio server process, spoken to in raw JSON-RPC (newline-delimited)."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self._log = log.open("ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "seedance_mcp"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self._next_id = 0

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()

    def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        self.send({"jsonrpc": "2.0", "id": self._next_id, "method": method, "params": params})
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the server exited (code {self.process.poll()}) before answering {method}")
            message = json.loads(line)
            if message.get("id") == self._next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        result = self.request("tools/call", {"name": tool, "arguments": arguments})
        if result.get("isError"):
            raise RuntimeError(f"{tool}: {result['content']}")
        return result["structuredContent"]

    def initialize(self) -> None:
        self.request(
            "initialize",
            {"protocolVersion": PROTOCOL, "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}},
        )
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def close(self) -> None:
        try:
            if self.process.stdin is not None:
                self.process.stdin.close()
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()
            self._log.close()


@dataclass
class _Figures:
    first_answer: list[float] = field(default_factory=lambda: [])
    peak_kb: list[int] = field(default_factory=lambda: [])
    list_status: list[float] = field(default_factory=lambda: [])
    status_first: list[float] = field(default_factory=lambda: [])
    status_cached: list[float] = field(default_factory=lambda: [])
    more: bool = False


def _one_session(env: dict[str, str], log: Path, handles: dict[str, str], figures: _Figures) -> None:
    session = _Session(env, log)
    try:
        session.initialize()
        listed = session.call("list_tasks", {})
        figures.first_answer.append(time.perf_counter() - session.started)
        assert len(listed["tasks"]) == 20, listed
        times: list[float] = []
        for _ in range(CALLS):
            started = time.perf_counter()
            page = session.call("list_tasks", {"status": LISTED_STATUS, "limit": 20})
            times.append(time.perf_counter() - started)
            assert len(page["tasks"]) == 20, page
            assert all(t["status"] == LISTED_STATUS for t in page["tasks"]), page
            figures.more = bool(page["more"])
        figures.list_status.append(statistics.median(times))
        times = []
        for _ in range(CALLS):
            started = time.perf_counter()
            status = session.call("get_task_status", {"task_id": handles["settled_task"]})
            times.append(time.perf_counter() - started)
            assert status["status"] == "succeeded", status
            assert status["job_id"] == handles["settled_job"], status
        figures.status_first.append(times[0])
        figures.status_cached.append(statistics.median(times[1:]))
        figures.peak_kb.append(rss_kb(session.process.pid, "VmHWM"))
    finally:
        session.close()


def _measure_sync(journals: dict[int, tuple[dict[str, str], dict[str, str]]], log: Path) -> dict[int, _Figures]:
    figures = {size: _Figures() for size in journals}
    for env, handles in journals.values():  # warm: imports, bytecode, file cache
        _one_session(env, log, handles, _Figures())
    for _ in range(RUNS):
        for size, (env, handles) in journals.items():
            _one_session(env, log, handles, figures[size])
    return figures


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds * 1000:.0f} ms"


async def measure(sizes: tuple[int, ...] = SIZES) -> Row:
    compileall.compile_dir(ROOT / "server" / "seedance_mcp", quiet=1)  # as an installed copy starts (see #1)
    with temp_dirs() as (root_state, videos):
        journals: dict[int, tuple[dict[str, str], dict[str, str]]] = {}
        for size in sizes:
            state = root_state / str(size)
            started = time.perf_counter()
            handles = await build_journal(state, size)
            print(
                f"  journal of {size} jobs built in {time.perf_counter() - started:.1f} s "
                f"({(state / 'jobs.sqlite3').stat().st_size / 1e6:.0f} MB)",
                file=sys.stderr,
                flush=True,
            )
            env = clean_env(
                SEEDANCE_PROVIDER="sandbox",
                SEEDANCE_STARTUP_DELAY="0",
                SEEDANCE_STATE_DIR=str(state),
                SEEDANCE_OUTPUT_DIR=str(videos),
                SEEDANCE_LOG_LEVEL="WARNING",
            )
            journals[size] = (env, handles)
        log = root_state / "servers.log"
        figures = await anyio.to_thread.run_sync(_measure_sync, journals, log)
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Traceback" in line]
    parts: list[str] = []
    for size in sizes:
        f = figures[size]
        assert f.more, (size, "list_tasks must say more jobs match")
        parts.append(
            f"{size // 1000}k: first answer {_ms(statistics.median(f.first_answer))}, peak RSS "
            f"{max(f.peak_kb) / 1024:.0f} MB, list_tasks({LISTED_STATUS}) {_ms(statistics.median(f.list_status))}, "
            f"get_task_status {_ms(statistics.median(f.status_first))} first / "
            f"{_ms(statistics.median(f.status_cached))} again"
        )
    small, large = figures[sizes[0]], figures[sizes[-1]]
    start_ratio = statistics.median(large.first_answer) / statistics.median(small.first_answer)
    rss_ratio = max(large.peak_kb) / max(small.peak_kb)
    list_ms = statistics.median(large.list_status) * 1000
    ok = start_ratio <= STARTUP_LIMIT and rss_ratio <= STARTUP_LIMIT and list_ms <= LIST_LIMIT_MS and not errors
    return Row(
        6,
        "journal growth (1k → 100k finished jobs, stdio)",
        f"{sizes[-1] // 1000}k vs {sizes[0] // 1000}k: first answer {start_ratio:.2f} ×, peak RSS {rss_ratio:.2f} ×, "
        f"list_tasks({LISTED_STATUS}) {list_ms:.1f} ms — "
        + "; ".join(parts)
        + f" (median of {RUNS} processes per size, "
        f"{CALLS} calls each; was 2.6 s and 439 MB at 100k)",
        f"first answer and RSS at 100k ≤ {STARTUP_LIMIT} × 1k; list_tasks(status) ≤ {LIST_LIMIT_MS:.0f} ms",
        ok,
        note="; ".join(errors[:2]),
    )


if __name__ == "__main__":
    print(anyio.run(measure))
