"""The money findings of the adversarial review of issue 15, each attacked through the real server.

- a draft rendered for real is priced at the draft's length, not 5 s (#1);
- prices that are not finite, non-negative numbers are refused where they are loaded (#4);
- a daily budget counts only spend in its own currency (#5);
- an approval id is judged by the journal's clock and pays for one video at most (#3);
- a task id the journal could not take is written even after another process claimed the job (#2).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of

if TYPE_CHECKING:
    from tests.fakes.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio
pytest_plugins = ["tests.fakes.postgres_server"]  # the session's PostgreSQL server fixture, `postgres_server`

PRICED_2_5 = (
    '[sources.mine]\nwhat = "test"\ndate = "2026-12-01"\n'
    '[models."2.5".regions.cn]\nsource = "mine"\n'
    'prices = [{ per_million = 40, with_video = 24, drafts = true, source = "mine" }]\n'
)
"""A catalog file that gives 2.5 a price covering 1080p and drafts, so the limits apply to it."""


def structured(result: Any) -> dict[str, Any]:
    return dict(result.structured_content or {})


async def test_a_draft_rendered_for_real_is_priced_at_the_drafts_length(tmp_path: Path) -> None:
    """A 30 s draft passes a per-video limit of 20 (about 12 at 480p); rendering it for real at 1080p costs about
    58, and is refused: its 5 s estimate (9.80) would have passed."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(PRICED_2_5)
    settings = make_settings(tmp_path, catalog_file=catalog, max_cost_per_video=20.0, sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        with anyio.fail_after(60):
            draft = await client.call_tool(
                "generate_video", {"prompt": "a draft", "model": "2.5", "draft": True, "duration": 30}
            )
            assert draft.is_error is False, text_of(draft)
            draft_id = structured(draft)["task_id"]
            final = {"prompt": "a draft", "model": "2.5", "draft_task_id": draft_id}
            dry = structured(await client.call_tool("generate_video", {**final, "dry_run": True}))
            refused = await client.call_tool("generate_video", final)
            listed = structured(await client.call_tool("list_tasks", {}))
    assert dry["duration"] == 30 and dry["estimated_cost"] == pytest.approx(58.4, abs=0.05)
    assert refused.is_error is True
    assert "SEEDANCE_MAX_COST_PER_VIDEO" in text_of(refused) and "58.40" in text_of(refused)
    assert len(listed["tasks"]) == 1  # the draft alone: nothing was sent for the final render


async def test_a_draft_the_journal_does_not_know_is_priced_at_the_longest_length(tmp_path: Path) -> None:
    """On stdio a draft made elsewhere (the console) is sent as given; its length is unknown, so it is estimated at
    the model's longest, as `duration=-1` is."""
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(PRICED_2_5)
    settings = make_settings(tmp_path, catalog_file=catalog)
    async with Client(create_app(settings)) as client:
        with anyio.fail_after(30):
            dry = await client.call_tool(
                "generate_video",
                {"prompt": "a draft", "model": "2.5", "draft_task_id": "cgt-20261201000000-abcde", "dry_run": True},
            )
    assert dry.is_error is False, text_of(dry)
    from seedance_mcp.catalog import builtin_catalog

    longest = builtin_catalog().presets["sandbox"].model("2.5").duration_max
    assert structured(dry)["duration"] == longest


NAN_PRICED_FILE = PRICED_2_5.replace("per_million = 40", "per_million = VALUE")


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("SEEDANCE_CATALOG_FILE", "nan", ['line 6: models."2.5".regions.cn.prices[0].per_million', "nan"]),
        ("SEEDANCE_CATALOG_FILE", "inf", ['line 6: models."2.5".regions.cn.prices[0].per_million', "inf"]),
        ("SEEDANCE_CATALOG_FILE", "-inf", ['line 6: models."2.5".regions.cn.prices[0].per_million', "-inf"]),
        ("SEEDANCE_PRICES", '{"cn": {"2.0": {"per_million": NaN}}}', ['cn."2.0".per_million', "nan"]),
        ("SEEDANCE_PRICES", '{"cn": {"2.0": {"per_million": 46, "per_million_with_video": Infinity}}}',
         ['cn."2.0".per_million_with_video', "inf"]),
        ("SEEDANCE_PRICES", '{"cn": {"2.0": {"per_million": -1}}}', ['cn."2.0".per_million', "-1"]),
    ],
)  # fmt: skip
@pytest.mark.subprocess
def test_a_price_that_is_not_a_finite_amount_stops_the_server_at_start_up(
    tmp_path: Path, variable: str, value: str, words: list[str]
) -> None:
    """A NaN price passes every comparison (the per-video limit, the confirmation, the budget) and voids a
    PostgreSQL budget's sum for the day: the real entry point refuses it with one line naming the variable and the
    entry (exit code 2, nothing on stdout)."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "SEEDANCE_STATE_DIR": str(tmp_path / "state"),
        "SEEDANCE_OUTPUT_DIR": str(tmp_path / "videos"),
        "SEEDANCE_PROVIDER": "sandbox",
    }
    if variable == "SEEDANCE_CATALOG_FILE":
        catalog = tmp_path / "catalog.toml"
        catalog.write_text(NAN_PRICED_FILE.replace("VALUE", value))
        env[variable] = str(catalog)
    else:
        env[variable] = value
    done = subprocess.run(
        [sys.executable, "-m", "seedance_mcp"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stdout == "", done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and variable in lines[0], done.stderr
    assert all(word in lines[0] for word in words), done.stderr


async def test_a_daily_budget_counts_only_spend_in_its_own_currency(tmp_path: Path, sandbox: SandboxServer) -> None:
    """Two MCP hosts on one state dir: Ark bills in CNY, BytePlus in USD. A CNY video never counts against the USD
    budget (it was counted as 5.01 USD and refused the BytePlus video), and list_tasks sums one currency."""
    common = {"base_url": f"{sandbox.url}/api/v3", "api_key": SECRET_KEY}
    ark = make_settings(tmp_path, provider="ark", daily_budget=6.0, **common)
    byteplus = make_settings(tmp_path, provider="byteplus", daily_budget=3.0, **common)
    call = {"prompt": "a kite", "model": "2.0", "resolution": "720p", "duration": 5, "wait": False}
    with anyio.fail_after(60):
        async with Client(create_app(ark)) as client:
            in_cny = await client.call_tool("generate_video", {**call, "prompt": "a kite in CNY"})
            over_cny = await client.call_tool("generate_video", {**call, "prompt": "another kite in CNY"})
        async with Client(create_app(byteplus)) as client:
            in_usd = await client.call_tool("generate_video", {**call, "prompt": "a kite in USD"})
            listed = structured(await client.call_tool("list_tasks", {}))
    assert in_cny.is_error is False and structured(in_cny)["currency"] == "CNY", text_of(in_cny)
    assert over_cny.is_error is True and "CNY" in text_of(over_cny) and "SEEDANCE_DAILY_BUDGET" in text_of(over_cny)
    assert in_usd.is_error is False, text_of(in_usd)
    usd = structured(in_usd)
    assert usd["currency"] == "USD"
    assert listed["spend"]["currency"] == "USD"
    assert listed["spend"]["today"] == pytest.approx(usd["estimated_cost"], abs=1e-3)
    assert (await sandbox_stats(sandbox))["creates"] == 2


@pytest.fixture
async def database_url(postgres_server: PostgresServer) -> str:
    from tests.fakes.postgres_server import fresh_database

    return await fresh_database(postgres_server)


def approval_id_in(text: str) -> str:
    import re

    match = re.search(r'approval_id="(apv-[0-9]+-[0-9a-f]+)"', text)
    assert match is not None, text
    return match.group(1)


@pytest.mark.postgres
@pytest.mark.subprocess
async def test_an_approval_id_pays_for_one_video_whatever_the_replicas_clocks_say(
    tmp_path: Path, database_url: str
) -> None:
    """Two replicas on one PostgreSQL, one whose clock runs 11 minutes ahead. The id it mints is judged by the
    journal's clock: the on-time replica takes it (it was refused as "expired"), and however it is used again
    (`force_new`, another replica) it returns the one video it paid for (it paid for two)."""
    from tests.e2e.test_clocks import libfaketime
    from tests.fakes.fake_ark import running_fake_ark
    from tests.fakes.replicas import mcp_client, replica_env, start_replica, write_tokens_file

    preload = libfaketime()
    write_tokens_file(tmp_path / "tokens.json")
    async with running_fake_ark(render_seconds=0.3) as fake:

        def env(name: str, **extra: str) -> dict[str, str]:
            return replica_env(
                tmp_path, name, base_url=fake.base_url, database_url=database_url, poll_interval=0.2,
                lease_seconds=3.0, SEEDANCE_CONFIRM_ABOVE="0.01", **extra,
            )  # fmt: skip

        replicas = [await start_replica(tmp_path, "on-time", env("on-time"))]
        try:
            ahead_env = env("ahead", LD_PRELOAD=preload, FAKETIME="+11m", FAKETIME_DONT_FAKE_MONOTONIC="1")
            replicas.append(await start_replica(tmp_path, "ahead", ahead_env))
            on_time, ahead = replicas
            call = {"prompt": "approved once", "model": "2.0", "resolution": "480p", "duration": 5}
            with anyio.fail_after(90):
                async with mcp_client(ahead.url, "alice") as alice:
                    refused = await alice.call_tool("generate_video", call)
                    approval_id = approval_id_in(text_of(refused))
                    first = await alice.call_tool("generate_video", {**call, "approval_id": approval_id})
                    again = await alice.call_tool(
                        "generate_video", {**call, "approval_id": approval_id, "force_new": True}
                    )
                async with mcp_client(on_time.url, "alice") as alice:
                    elsewhere = await alice.call_tool(
                        "generate_video", {**call, "approval_id": approval_id, "force_new": True}
                    )
        finally:
            for replica in replicas:
                await replica.stop()
    assert first.is_error is False, text_of(first)
    assert again.is_error is False and elsewhere.is_error is False, (text_of(again), text_of(elsewhere))
    paid = structured(first)["task_id"]
    assert structured(again)["task_id"] == paid and structured(again)["reused_existing"] is True
    assert structured(elsewhere)["task_id"] == paid and structured(elsewhere)["reused_existing"] is True
    assert fake.creates == 1


@pytest.mark.postgres
@pytest.mark.subprocess
async def test_a_task_id_the_journal_could_not_take_is_recorded_after_another_replica_took_the_job_over(
    tmp_path: Path, postgres_server: PostgresServer, database_url: str
) -> None:
    """Two replicas on one PostgreSQL, on a gateway with no task list. The create answers while the replica that
    sent it is cut off from the database; the other replica claims the job meanwhile and gives it up as `unknown`
    (nothing to search). Once the link is back, the task id the caller was given is on the job (it was dropped by
    the lease fence), the video is saved once, and get_task_status finds it."""
    import httpx

    from seedance_mcp.sandbox import SandboxState, running_sandbox
    from tests.fakes.replicas import (
        mcp_client,
        replica_env,
        running_database_link,
        start_replica,
        until,
        until_journal,
        write_tokens_file,
    )

    write_tokens_file(tmp_path / "tokens.json")
    async with (
        running_sandbox(SandboxState(render_seconds=0.5)) as sandbox,
        running_database_link(postgres_server.socket_dir) as link,
    ):

        def env(name: str, url: str) -> dict[str, str]:
            return replica_env(
                tmp_path, name, base_url=sandbox.url, database_url=url, poll_interval=0.3, lease_seconds=3.0,
                SEEDANCE_PROVIDER="openai-compatible",
            )  # fmt: skip

        cut = await start_replica(tmp_path, "cut", env("cut", link.url(database_url)))
        other = await start_replica(tmp_path, "other", env("other", database_url))
        async with httpx.AsyncClient() as http:
            slow_create = {"faults": [{"route": "create", "kind": "slow", "delay": 8}]}
            await http.post(f"{sandbox.url}/_sandbox/faults", json=slow_create)
        answer: dict[str, Any] = {}
        try:
            with anyio.fail_after(150):

                async def call() -> None:
                    async with mcp_client(cut.url, "alice") as alice:
                        answer["result"] = await alice.call_tool("generate_video", {"prompt": "kept", "wait": False})

                async with anyio.create_task_group() as group:
                    group.start_soon(call)
                    await until(lambda: sandbox.state.create_attempts >= 1, "the create at the provider", 20)
                    link.cut()
                    await until_journal(
                        database_url,
                        lambda rows: bool(rows) and rows[0].status == "unknown" and not rows[0].has_work,
                        "the other replica takes the job over and gives it up",
                        60,
                    )
                    await until(lambda: "result" in answer, "the caller's answer", 30)
                link.restore()
                [task_id] = list(sandbox.state.tasks)
                rows = await until_journal(
                    database_url,
                    lambda rows: bool(rows) and rows[0].data.get("video_path") is not None,
                    "the video saved",
                    60,
                )
                async with mcp_client(other.url, "alice") as alice:
                    status = await alice.call_tool("get_task_status", {"task_id": task_id})
        finally:
            for replica in (cut, other):
                await replica.stop()
    assert task_id in text_of(answer["result"])
    [row] = rows
    assert (row.task_id, row.status) == (task_id, "succeeded")
    assert status.is_error is False and structured(status)["video_path"], text_of(status)
    assert sandbox.state.creates == 1 and sandbox.state.downloads == 1
    saved = list((tmp_path).rglob("*.mp4"))
    assert len(saved) == 1, saved


async def test_the_calls_wait_bounds_a_slow_create_which_goes_on_and_lands_once(tmp_path: Path) -> None:
    """Three 429s (Retry-After 5 s, scaled to 0.5 s) then an answer that drips for 6 s: the create outlasts the
    call's 3 s wait (the call was held 21 s). The call returns the job `submitting` within its wait, an identical
    call meanwhile is answered within its own wait, and the create goes on in the background and lands in the
    journal: one task, followed to its video."""
    from tests.conftest import SECRET_KEY
    from tests.fakes.fake_ark import running_fake_ark

    async with running_fake_ark(render_seconds=0.3) as fake:
        for _ in range(3):
            fake.add_fault("create", "http_status", status=429, code="RequestBurstTooFast", retry_after=5)
        fake.add_fault("create", "drip", interval=1.0)
        settings = make_settings(
            tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY, http_timeout=6.0,
            wait_seconds=3.0, retry_scale=0.1, reconcile_delays=(0.1,),
        )  # fmt: skip
        call = {"prompt": "a slow create"}
        async with Client(create_app(settings)) as client:
            with anyio.fail_after(60):
                started = anyio.current_time()
                first = await client.call_tool("generate_video", call)
                first_took = anyio.current_time() - started
                started = anyio.current_time()
                again = await client.call_tool("generate_video", call)
                again_took = anyio.current_time() - started
                job = structured(first)
                assert first.is_error is False and job["status"] == "submitting", text_of(first)
                handle = job["task_id"]
                # The drip outlasts the HTTP time-out: the create's answer is lost (`unknown`), and the worker finds
                # its task in the provider's list. Polled here for that outcome; nothing is ordered by the sleep.
                while (done := structured(await client.call_tool("get_task_status", {"task_id": handle})))[
                    "status"
                ] in ("submitting", "unknown"):
                    await anyio.sleep(0.2)
                saved = structured(await client.call_tool("get_task_status", {"task_id": handle, "wait": True}))
    assert handle.startswith("job-") and "get_task_status" in job["next_step"]
    assert first_took < 8.0, first_took  # the wait (3 s) and a margin for a loaded machine, not the create's 15 s+
    assert again_took < 8.0, again_took
    assert again.is_error is True and handle in text_of(again), text_of(again)  # in flight: not paid twice
    assert done["status"] in ("queued", "running", "succeeded") and done["task_id"].startswith("cgt-")
    assert saved["video_path"], saved
    assert fake.creates == 1


async def test_cancel_task_answers_within_the_calls_wait_when_the_provider_drips(tmp_path: Path) -> None:
    """Every status answer drips (2 s HTTP time-out, retried): cancel_task ran 12 s. It answers within its wait
    (3 s), saying that whether the task was cancelled is not known yet."""
    from tests.conftest import SECRET_KEY
    from tests.fakes.fake_ark import running_fake_ark

    async with running_fake_ark(render_seconds=30, queue_seconds=30) as fake:
        settings = make_settings(
            tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY, http_timeout=2.0, wait_seconds=3.0
        )
        async with Client(create_app(settings)) as client:
            with anyio.fail_after(60):
                made = await client.call_tool("generate_video", {"prompt": "to cancel", "wait": False})
                task_id = structured(made)["task_id"]
                fake.add_fault("status", "drip", times=-1, interval=0.5)
                started = anyio.current_time()
                answer = await client.call_tool("cancel_task", {"task_id": task_id})
                took = anyio.current_time() - started
    assert took < 8.0, took  # the wait (3 s) and a margin for a loaded machine, not the retries' 12 s
    assert answer.is_error is False and structured(answer)["cancelled"] is False
    assert "not known yet" in structured(answer)["message"]


class _StallFirstDownload(dict[str, float]):
    """`StallingFakeArk.stall` for a task whose id is not known yet: the first video download stalls midway."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds: float | None = seconds

    def pop(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        seconds, self.seconds = self.seconds, None
        return default if seconds is None else seconds


async def test_reading_a_video_while_the_worker_saves_it_never_downloads_it_twice(tmp_path: Path) -> None:
    """`resources/read` of the video while this server's worker is midway through saving it: the read does not
    start a download of its own into the worker's `.part` file (it truncated it, the worker's try failed, and the
    video was fetched three times); it says the video is not saved yet. The worker's one download saves it."""
    from mcp.shared.exceptions import MCPError

    from tests.conftest import SECRET_KEY
    from tests.fakes.replicas import large_mp4_bytes, running_stalling_fake_ark, until

    videos = tmp_path / "videos"
    async with running_stalling_fake_ark(render_seconds=0.3) as fake:
        fake.stall = _StallFirstDownload(10.0)
        settings = make_settings(tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY)
        async with Client(create_app(settings)) as client:
            with anyio.fail_after(60):
                made = await client.call_tool("generate_video", {"prompt": "race", "wait": False})
                task_id = structured(made)["task_id"]
                await until(
                    lambda: videos.is_dir() and any(p.name.endswith(".part") for p in videos.iterdir()),
                    "the worker midway through its download",
                    20,
                )
                with pytest.raises(MCPError) as refused:
                    await client.read_resource(f"seedance://tasks/{task_id}/video")
                saved = structured(await client.call_tool("get_task_status", {"task_id": task_id, "wait": True}))
    assert "get_task_status" in str(refused.value)
    assert saved["video_path"] and Path(saved["video_path"]).read_bytes() == large_mp4_bytes()
    assert fake.downloads_of(task_id) == 1
    assert not [p.name for p in videos.iterdir() if p.name.endswith(".part")]


async def test_a_last_frame_whose_download_failed_is_tried_again_like_the_video(tmp_path: Path) -> None:
    """The last frame's URL loops its redirects once: its download fails. It is tried again after the backoff and
    saved (it was given up at once, its URL dropped)."""
    from tests.conftest import SECRET_KEY
    from tests.fakes.fake_ark import running_fake_ark

    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("frame", "redirect_loop", times=1)
        settings = make_settings(tmp_path, provider="ark", base_url=fake.base_url, api_key=SECRET_KEY)
        async with Client(create_app(settings)) as client:
            with anyio.fail_after(30):
                made = structured(
                    await client.call_tool("generate_video", {"prompt": "a last frame", "return_last_frame": True})
                )
                task_id = made["task_id"]
                while not (job := structured(await client.call_tool("get_task_status", {"task_id": task_id})))[
                    "last_frame_path"
                ]:
                    await anyio.sleep(0.1)  # polling for the outcome, not ordering work
    frame_gets = [r for r in fake.requests if r.method == "GET" and r.path == f"/files/{task_id}.png"]
    assert job["video_path"] and Path(job["last_frame_path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len([r for r in frame_gets if "_loop" not in r.query]) == 2
