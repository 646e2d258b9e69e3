"""A create whose answer was lost: the paid task is found and saved once, or proven never made — never guessed.

Through the real server (in-memory MCP client) against the independent socket-level fake Ark in `fake_ark.py`,
which can lose answers, run its clock behind, page its list, hide flex tasks and demand `filter.model`.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from tests.conftest import SECRET_KEY, make_settings, text_of
from tests.fakes.fake_ark import FakeArk, running_fake_ark

DEFAULT_MODEL_ID = "doubao-seedance-2-0-mini-260615"
"""The ark preset's default model, which these jobs are made with: other programs' identical tasks use it too."""

pytestmark = pytest.mark.anyio


def ark_settings(tmp_path: Path, fake: FakeArk, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "provider": "ark",
        "base_url": fake.base_url,
        "api_key": SECRET_KEY,
        "http_timeout": 2.0,
        "reconcile_delays": (0.1, 0.3, 0.6),
        # Past the create's time-out, as the product's default (time-out + 30 s) is: a loaded machine's fake reads a
        # create late, and an empty look before then would call a task it is about to make "not created".
        "reconcile_window": 2.5,
        "reconcile_patience": 3.0,
    }
    values.update(overrides)
    return make_settings(tmp_path, **values)


async def job_when_decided(client: Client) -> dict[str, Any]:
    """The newest job once the server has decided what its lost create did (found, not created, or ask a person)."""
    with anyio.fail_after(20):
        while True:
            listed = await client.call_tool("list_tasks", {"limit": 1, "detail": True})
            job = (listed.structured_content or {})["tasks"][0]
            if job["status"] != "unknown" or "provider console" in (job.get("error_message") or ""):
                break
            await anyio.sleep(0.05)
    if job["status"] in ("queued", "running", "succeeded"):
        final = await client.call_tool("get_task_status", {"task_id": job["task_id"], "wait": True})
        job = final.structured_content or {}
    return job


def logged_download_retries(caplog: pytest.LogCaptureFixture, task_id: str) -> list[str]:
    """The server's log lines announcing another request for the task's video, each with its reason: a try again
    within one download (a read time-out, a cut body), or a failed download the worker tries later."""
    return [
        message
        for record in caplog.records
        if (message := record.getMessage())
        and (
            (record.name == "seedance_mcp.providers.download" and "trying again" in message and task_id in message)
            or (record.name == "seedance_mcp.jobs.downloads" and message.startswith(f"download of {task_id} failed"))
        )
    ]


def our_tasks(fake: FakeArk) -> list[str]:
    return [task.id for task in fake.tasks.values() if task.owner == "us"]


async def lose_one_create(client: Client, prompt: str, **arguments: Any) -> str:
    first = await client.call_tool("generate_video", {"prompt": prompt, **arguments})
    assert first.is_error is True and "answer was lost" in text_of(first)
    return text_of(first)


async def test_a_lost_answer_behind_a_slow_provider_clock_is_found_and_saved_once(tmp_path: Path) -> None:
    """The provider's clock runs 40 s behind: its task still falls in the window, is adopted and saved."""
    async with running_fake_ark(render_seconds=0.3, clock_offset=-40.0) as fake:
        fake.add_fault("create", "drop_after")
        settings = ark_settings(tmp_path, fake)
        async with Client(create_app(settings)) as client:
            await lose_one_create(client, "clock behind")
            job = await job_when_decided(client)
            retry = await client.call_tool("generate_video", {"prompt": "clock behind"})
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file()
    assert job["task_id"] == our_tasks(fake)[0]
    assert (retry.structured_content or {})["reused_existing"] is True
    assert fake.creates == 1 and fake.downloads_of(job["task_id"]) == 1


async def test_a_create_the_provider_reads_after_the_request_timed_out_is_found_not_called_absent(
    tmp_path: Path,
) -> None:
    """The provider takes the create only after our 2 s time-out (as the fake does on a loaded machine): looks
    made before then find nothing, yet the task is made. The job waits out the window, finds it and saves it."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "slow", delay=2.3)
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            first = await client.call_tool("generate_video", {"prompt": "read late"})
            job = await job_when_decided(client)
    assert first.is_error is True and "answer was lost" in text_of(first)
    assert job["status"] == "succeeded" and job["task_id"] == our_tasks(fake)[0]
    assert fake.creates == 1 and fake.deliveries_of(job["task_id"]) == 1


async def test_a_lost_flex_job_is_found_although_the_list_hides_flex_tasks_by_default(tmp_path: Path) -> None:
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "drop_after")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            await lose_one_create(client, "flex", model="1.5-pro", service_tier="flex")
            job = await job_when_decided(client)
    assert job["status"] == "succeeded" and job["task_id"] == our_tasks(fake)[0]
    assert any(r.query.get("filter.service_tier") == ["flex"] for r in fake.requests)


async def test_a_key_that_must_name_the_model_still_finds_its_lost_task(tmp_path: Path) -> None:
    async with running_fake_ark(render_seconds=0.3, require_filter_model=True) as fake:
        fake.add_fault("create", "drop_after")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            await lose_one_create(client, "custom key")
            job = await job_when_decided(client)
    assert job["status"] == "succeeded" and job["task_id"] == our_tasks(fake)[0]


async def test_when_no_look_at_the_task_list_succeeds_the_job_stays_unknown_and_a_retry_is_held_back(
    tmp_path: Path,
) -> None:
    """Never "nothing was created" without a successful look: that would tell the agent to pay twice."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "drop_after")
        fake.add_fault("list", "http_status", times=-1, status=500)
        async with Client(create_app(ark_settings(tmp_path, fake, reconcile_patience=1.5))) as client:
            await lose_one_create(client, "list down")
            job = await job_when_decided(client)
            retry = await client.call_tool("generate_video", {"prompt": "list down"})
    assert job["status"] == "unknown" and job.get("error_code") != "NotCreated"
    assert "could not be read" in job["error_message"] and "provider console" in job["error_message"]
    assert retry.is_error is True and "force_new=true" in text_of(retry)
    assert fake.creates == 1


async def test_a_create_that_never_arrived_is_proven_not_created_and_a_retry_goes_through(tmp_path: Path) -> None:
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "drop_before")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            await lose_one_create(client, "never arrived")
            job = await job_when_decided(client)
            retry = await client.call_tool("generate_video", {"prompt": "never arrived"})
    assert job["status"] == "failed" and job["error_code"] == "NotCreated"
    assert retry.is_error is False and (retry.structured_content or {})["status"] == "succeeded"
    assert fake.creates == 1


async def test_on_a_busy_account_the_lost_task_is_found_past_the_first_page(tmp_path: Path) -> None:
    """60 newer tasks of other jobs push ours off the first 50-task page: the search reads on."""
    async with running_fake_ark(render_seconds=0.3, list_page_cap=50) as fake:
        fake.add_fault("create", "drop_after")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            await lose_one_create(client, "busy account")
            for i in range(60):
                fake.add_foreign_task(model=DEFAULT_MODEL_ID, created_at=time.time() + 0.01 * i)
            job = await job_when_decided(client)
    assert job["status"] == "succeeded" and job["task_id"] == our_tasks(fake)[0]
    foreign = [task.id for task in fake.tasks.values() if task.owner != "us"]
    assert all(fake.downloads_of(task_id) == 0 for task_id in foreign)


async def test_a_task_another_program_made_at_the_same_moment_is_never_adopted(tmp_path: Path) -> None:
    """Another program on the same key creates an identical task at that moment: the job's marker tells them apart."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.foreign_task_on_create = {"model": DEFAULT_MODEL_ID}
        fake.add_fault("create", "drop_after")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            await lose_one_create(client, "rival program")
            job = await job_when_decided(client)
    assert job["status"] == "succeeded" and job["task_id"] == our_tasks(fake)[0]


async def test_an_identical_task_of_someone_else_is_listed_not_adopted_when_ours_never_arrived(
    tmp_path: Path,
) -> None:
    """Ours was never created; someone else's identical task sits in the window: not taken, not called absent."""
    async with running_fake_ark(render_seconds=0.3) as fake:
        fake.add_fault("create", "drop_before")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            rival = fake.add_foreign_task(model=DEFAULT_MODEL_ID)
            await lose_one_create(client, "not ours")
            job = await job_when_decided(client)
    assert job["status"] == "unknown" and rival.id in job["error_message"]
    assert fake.polls_of(rival.id) == 0 and fake.downloads_of(rival.id) == 0


async def test_several_creates_lost_at_once_each_find_their_own_task(tmp_path: Path) -> None:
    prompts = [f"lost together {i}" for i in range(4)]
    async with running_fake_ark(render_seconds=0.3) as fake:
        for _ in prompts:
            fake.add_fault("create", "drop_after")
        async with Client(create_app(ark_settings(tmp_path, fake))) as client:
            async with anyio.create_task_group() as group:
                for prompt in prompts:
                    group.start_soon(lose_one_create, client, prompt)
            with anyio.fail_after(20):
                while True:
                    listed = (await client.call_tool("list_tasks", {"detail": True})).structured_content or {}
                    if all(job.get("video_path") for job in listed["tasks"]):
                        break
                    await anyio.sleep(0.1)
    by_prompt = {task.body["content"][0]["text"]: task.id for task in fake.tasks.values()}
    assert sorted(job["prompt"] for job in listed["tasks"]) == sorted(prompts)
    assert all(by_prompt[job["prompt"]] == job["task_id"] for job in listed["tasks"])
    assert fake.creates == 4 and all(fake.downloads_of(task_id) == 1 for task_id in by_prompt.values())


async def test_success_without_a_video_url_is_saved_once_the_url_appears_even_after_a_restart(
    tmp_path: Path,
) -> None:
    async with running_fake_ark(render_seconds=0.2) as fake:
        fake.add_fault("status", "no_video_url", times=-1)
        fake.add_fault("list", "no_video_url", times=-1)
        settings = ark_settings(tmp_path, fake)
        async with Client(create_app(settings)) as client:
            first = await client.call_tool("generate_video", {"prompt": "no url yet", "wait": False})
            handle = (first.structured_content or {})["task_id"]
            with anyio.fail_after(10):
                while True:
                    seen = (await client.call_tool("get_task_status", {"task_id": handle})).structured_content or {}
                    if seen["status"] == "succeeded":
                        break
                    await anyio.sleep(0.05)
        assert seen.get("video_path") is None
        fake.faults.clear()
        async with Client(create_app(settings)) as client:
            final = await client.call_tool("get_task_status", {"task_id": handle, "wait": True})
    job = final.structured_content or {}
    assert job["status"] == "succeeded" and Path(job["video_path"]).is_file()
    assert fake.downloads_of(handle) == 1


@pytest.mark.parametrize("queue_marker", ["[[queue=2]]", ""])
async def test_cancel_on_an_openai_style_gateway_never_deletes_a_render_or_claims_it_is_unbilled(
    tmp_path: Path, queue_marker: str
) -> None:
    """On `/v1/videos`, DELETE removes a finished video; it does not stop a render. Say only what is known."""
    settings = make_settings(tmp_path, sandbox_as="openai-compatible", sandbox_render_seconds=2.5)
    async with Client(create_app(settings)) as client:
        started = await client.call_tool("generate_video", {"prompt": f"keep going {queue_marker}", "wait": False})
        handle = (started.structured_content or {})["task_id"]
        cancel = await client.call_tool("cancel_task", {"task_id": handle})
        final = await client.call_tool("get_task_status", {"task_id": handle, "wait": True})
    answer = cancel.structured_content or {}
    assert answer["cancelled"] is False and "cannot stop a render" in answer["message"]
    assert "nothing is billed" not in answer["message"] and answer["status"] in ("queued", "running")
    assert (final.structured_content or {})["status"] == "succeeded"


async def test_under_load_with_one_create_in_twenty_losing_its_answer_every_paid_task_is_saved_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """200 concurrent calls; 10 creates reach the provider but their answers are lost.

    The fake shares the event loop with the server: on a loaded machine it may answer a video request after the
    server's read time-out, and the server asks again. That is a retry, not a second download: each video is
    delivered once, and every further request for it is one the server logged with its reason
    (tests/test_download_retry_or_duplicate.py makes that late answer on purpose)."""
    caplog.set_level(logging.INFO, logger="seedance_mcp")
    calls = 200
    async with running_fake_ark(render_seconds=0.5) as fake:
        for _ in range(calls // 20):
            fake.add_fault("create", "drop_after")
        settings = ark_settings(tmp_path, fake, poll_interval=0.1, wait_seconds=0.0)
        async with Client(create_app(settings)) as client:
            async with anyio.create_task_group() as group:
                for i in range(calls):
                    group.start_soon(client.call_tool, "generate_video", {"prompt": f"load {i}", "wait": False})
            with anyio.fail_after(60):
                while True:
                    listed = (
                        await client.call_tool("list_tasks", {"limit": calls, "detail": True})
                    ).structured_content or {}
                    if all(job.get("video_path") for job in listed["tasks"]):
                        break
                    await anyio.sleep(0.2)
    assert len(listed["tasks"]) == calls and not listed["more"] and fake.creates == calls
    task_ids = {job["task_id"] for job in listed["tasks"]}
    assert task_ids == set(fake.tasks) and all(fake.deliveries_of(task_id) == 1 for task_id in task_ids)
    assert all(fake.file_requests_of(t) == 1 + len(logged_download_retries(caplog, t)) for t in task_ids)
    assert len(list(settings.output_dir.glob("*.mp4"))) == calls
