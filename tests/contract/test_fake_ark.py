"""The socket-level fake Ark provider: its routes, its task life and every fault it can play, over real HTTP."""

from __future__ import annotations

import base64
import email.utils
import io
import json
import time
from collections.abc import AsyncGenerator
from typing import Any

import anyio
import av
import httpx
import pytest
from PIL import Image, ImageChops, ImageStat

from seedance_mcp.sandbox.clips import read_code, shot_tag
from tests.fakes.fake_ark import API, FakeArk, FakeTask, mp4_bytes, png_bytes, running_fake_ark

pytestmark = pytest.mark.anyio

KEY = "sk-fake-ark-KEY-0123456789abcdef"
MODEL = "doubao-seedance-1-0-pro-250528"
OTHER_MODEL = "doubao-seedance-2-0-260128"
TASKS = "/contents/generations/tasks"


def create_body(**fields: Any) -> dict[str, Any]:
    return {"model": MODEL, "content": [{"type": "text", "text": "a kitten yawns"}], **fields}


@pytest.fixture
async def fake() -> AsyncGenerator[FakeArk]:
    async with running_fake_ark(render_seconds=60.0) as server:  # statuses advance only when a test ages a task
        yield server
        assert server.handler_errors == []


@pytest.fixture
async def client(fake: FakeArk) -> AsyncGenerator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=fake.base_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=5.0
    ) as http:
        yield http


async def create(client: httpx.AsyncClient, **fields: Any) -> str:
    answer = await client.post(TASKS, json=create_body(**fields))
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def age(task: FakeTask, seconds: float) -> None:
    """Move a task's creation back in time, so its clock-driven status advances without waiting."""
    task.created_at -= seconds


async def test_a_task_goes_queued_running_succeeded_and_serves_the_real_mp4(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """A created task is queued, then running, then succeeded with a video URL that serves the sample MP4."""
    fake.queue_seconds = 30.0
    fake.render_seconds = 60.0
    task_id = await create(client, return_last_frame=True)
    assert task_id.startswith("cgt-") and len(task_id.split("-")[1]) == 14 and len(task_id.split("-")[2]) == 5
    task = fake.tasks[task_id]
    assert (task.model, task.owner, task.duration, task.frames) == (MODEL, "us", 5, None)

    first = (await client.get(f"{TASKS}/{task_id}")).json()
    assert first["status"] == "queued" and "content" not in first and first["error"] is None
    age(task, 30.0)
    assert (await client.get(f"{TASKS}/{task_id}")).json()["status"] == "running"
    age(task, 60.0)
    done = (await client.get(f"{TASKS}/{task_id}")).json()
    assert done["status"] == "succeeded"
    assert done["content"]["video_url"] == f"{fake.url}/files/{task_id}.mp4?X-Tos-Expires=86400"
    assert done["usage"] == {"completion_tokens": 108900, "total_tokens": 108900}
    assert (done["resolution"], done["ratio"], done["duration"], done["service_tier"]) == ("720p", "16:9", 5, "default")
    assert done["updated_at"] - done["created_at"] == 90

    async with httpx.AsyncClient() as files:
        video = await files.get(done["content"]["video_url"])
        frame = await files.get(done["content"]["last_frame_url"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    assert video.content == mp4_bytes() and video.content[4:8] == b"ftyp"
    assert int(video.headers["content-length"]) == len(mp4_bytes())
    assert frame.content == png_bytes() and frame.content.startswith(b"\x89PNG")
    assert fake.creates == 1 and fake.polls_of(task_id) == 3 and fake.downloads_of(task_id) == 1


async def test_every_answer_carries_a_request_id_and_a_date_shifted_by_the_clock_offset(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """X-Request-Id is fresh on each answer; Date and the task's timestamps run `clock_offset` behind."""
    fake.clock_offset = -3600.0
    task_id = await create(client)
    one = await client.get(f"{TASKS}/{task_id}")
    two = await client.get(f"{TASKS}/{task_id}")
    assert one.headers["x-request-id"] and one.headers["x-request-id"] != two.headers["x-request-id"]
    date = email.utils.parsedate_to_datetime(one.headers["date"]).timestamp()
    assert abs(date - (time.time() - 3600)) < 5
    assert abs(one.json()["created_at"] - (fake.tasks[task_id].created_at - 3600)) <= 1
    missing = await client.get(f"{TASKS}/cgt-20990101000000-zzzzz")
    assert missing.status_code == 404 and missing.headers["x-request-id"]


async def test_create_treats_null_as_absent_echoes_fields_and_picks_a_seed(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """JSON null fields are ignored, a -1 seed becomes a random one, and the Ark echoes come back on the task."""
    task_id = await create(
        client, seed=-1, frames=57, resolution="1080p", ratio=None, service_tier=None, safety_identifier="user-7"
    )
    task = fake.tasks[task_id]
    assert task.seed >= 0 and task.frames == 57 and task.duration is None and task.service_tier == "default"
    assert task.body.get("ratio", "absent") == "absent"
    shown = (await client.get(f"{TASKS}/{task_id}")).json()
    assert (shown["seed"], shown["frames"], shown["resolution"], shown["safety_identifier"]) == (
        task.seed,
        57,
        "1080p",
        "user-7",
    )
    assert "duration" not in shown
    assert fake.tasks[await create(client, seed=42)].seed == 42


async def test_create_without_model_or_content_is_a_400_ark_envelope(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """A create missing its model or content is refused with MissingParameter and creates nothing."""
    no_model = await client.post(TASKS, json={"model": None, "content": [{"type": "text", "text": "x"}]})
    no_content = await client.post(TASKS, json={"model": MODEL})
    assert no_model.status_code == 400 and no_model.json()["error"]["code"] == "MissingParameter.model"
    assert no_content.status_code == 400 and no_content.json()["error"]["code"] == "MissingParameter.content"
    assert no_content.json()["error"]["type"] == "BadRequest"
    assert fake.creates == 0 and fake.tasks == {}


async def test_a_required_key_refuses_other_bearers_with_401(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """With `required_key` set, another key gets 401 AuthenticationError and the right one works."""
    fake.required_key = "sk-the-right-one"
    refused = await client.post(TASKS, json=create_body())
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "AuthenticationError"
    fake.required_key = KEY
    assert (await client.post(TASKS, json=create_body())).status_code == 200
    assert fake.creates == 1


async def test_list_pages_newest_first_and_caps_the_page_size(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """The list is newest first, pages from 1, and never returns more than `list_page_cap` items."""
    now = time.time()
    made = [fake.add_foreign_task(model=MODEL, created_at=now - 100 + i) for i in range(7)]
    newest_first = [t.id for t in reversed(made)]
    fake.list_page_cap = 3
    pages: list[str] = []
    for page in (1, 2, 3, 4):
        answer = (await client.get(TASKS, params={"page_num": page, "page_size": 100})).json()
        assert answer["total"] == 7
        pages.extend(item["id"] for item in answer["items"])
    assert pages == newest_first
    assert len((await client.get(TASKS)).json()["items"]) == 3
    fake.list_page_cap = 50
    assert [i["id"] for i in (await client.get(TASKS)).json()["items"]] == newest_first


async def test_list_shows_flex_tasks_only_when_asked_and_filters_by_model_ids_and_status(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """Flex tasks are listed only with filter.service_tier=flex; filter.model, task_ids and status narrow it."""
    default_id = await create(client)
    flex_id = await create(client, service_tier="flex")
    other = fake.add_foreign_task(model=OTHER_MODEL)

    async def ids(**params: Any) -> list[str]:
        answer = await client.get(TASKS, params=params)
        assert answer.status_code == 200, answer.text
        return [item["id"] for item in answer.json()["items"]]

    assert set(await ids()) == {default_id, other.id}
    assert set(await ids(**{"filter.service_tier": "default"})) == {default_id, other.id}
    assert await ids(**{"filter.service_tier": "flex"}) == [flex_id]
    assert await ids(**{"filter.task_ids": [flex_id, default_id]}) == [default_id]
    assert await ids(**{"filter.task_ids": [flex_id], "filter.service_tier": "flex"}) == [flex_id]
    assert await ids(**{"filter.model": OTHER_MODEL}) == [other.id]
    assert set(await ids(**{"filter.status": "running"})) == {default_id, other.id}
    assert await ids(**{"filter.status": "succeeded"}) == []
    assert fake.polls_of(default_id) == 1 and fake.polls_of(flex_id) == 2


async def test_a_custom_permission_key_must_send_filter_model(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """With `require_filter_model`, a list without filter.model is a 400 MissingParameter.filter.model."""
    fake.require_filter_model = True
    refused = await client.get(TASKS)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "MissingParameter.filter.model"
    assert (await client.get(TASKS, params={"filter.model": MODEL})).status_code == 200


async def test_a_foreign_task_appears_with_every_create_when_asked(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`foreign_task_on_create` makes another program's task at the same moment as each create."""
    fake.foreign_task_on_create = {"model": MODEL, "owner": "other-program"}
    ours = await create(client)
    foreign = [t for t in fake.tasks.values() if t.owner == "other-program"]
    assert len(foreign) == 1 and foreign[0].created_at == fake.tasks[ours].created_at
    assert fake.creates == 1 and len((await client.get(TASKS)).json()["items"]) == 2


async def test_cancel_follows_the_ark_rules(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """Queued is cancelled, running is refused, a finished record is deleted, an unknown id is 404."""
    fake.queue_seconds = 10.0
    queued = await create(client)
    cancelled = await client.delete(f"{TASKS}/{queued}")
    assert cancelled.status_code == 200 and cancelled.content == b""
    assert (await client.get(f"{TASKS}/{queued}")).json()["status"] == "cancelled"
    again = await client.delete(f"{TASKS}/{queued}")
    assert again.status_code == 400 and again.json()["error"]["code"] == "InvalidAction"

    running = await create(client)
    age(fake.tasks[running], 10.0)
    refused = await client.delete(f"{TASKS}/{running}")
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidAction"

    age(fake.tasks[running], 60.0)
    assert (await client.delete(f"{TASKS}/{running}")).status_code == 200
    assert running not in fake.tasks
    assert (await client.get(f"{TASKS}/{running}")).status_code == 404
    assert (await client.delete(f"{TASKS}/cgt-20990101000000-zzzzz")).status_code == 404


async def test_many_requests_share_one_keep_alive_connection(fake: FakeArk) -> None:
    """Fifty requests through a one-connection pool all arrive on the same socket."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=fake.base_url, limits=limits) as http:
        task_id = await create(http)
        for _ in range(25):
            assert (await http.get(f"{TASKS}/{task_id}")).status_code == 200
            assert (await http.get(TASKS, params={"filter.task_ids": task_id})).status_code == 200
        assert (await http.get(f"{fake.url}/files/{task_id}.mp4")).content == mp4_bytes()
    assert len(fake.requests) == 52 and {r.connection for r in fake.requests} == {1}


async def test_a_range_request_gets_the_rest_of_the_file(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`Range: bytes=N-` is answered 206 with the tail of the MP4."""
    task_id = await create(client)
    async with httpx.AsyncClient() as files:
        tail = await files.get(f"{fake.url}/files/{task_id}.mp4", headers={"Range": "bytes=100-"})
    assert tail.status_code == 206 and tail.content == mp4_bytes()[100:]
    assert tail.headers["content-range"] == f"bytes 100-{len(mp4_bytes()) - 1}/{len(mp4_bytes())}"


# ---- faults ---------------------------------------------------------------------------------------------------------


async def test_drop_before_closes_without_creating(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`drop_before` on create: the client sees a protocol error and nothing was created."""
    fake.add_fault("create", "drop_before")
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(TASKS, json=create_body())
    assert fake.creates == 0 and fake.requests[-1].status is None
    await create(client)
    assert fake.creates == 1 and fake.faults == []


async def test_drop_after_creates_the_task_and_loses_the_answer(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`drop_after` on create: the client sees a protocol error, but the task exists and shows in the list."""
    fake.add_fault("create", "drop_after")
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(TASKS, json=create_body())
    assert fake.creates == 1
    (lost,) = fake.tasks.values()
    assert [i["id"] for i in (await client.get(TASKS)).json()["items"]] == [lost.id]


async def test_half_body_and_lie_length_break_the_download(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """Half a body under a true length, or the real body under a false length, is a protocol error."""
    task_id = await create(client)
    url = f"{fake.url}/files/{task_id}.mp4"
    fake.add_fault("download", "half_body")
    fake.add_fault("download", "lie_length")
    async with httpx.AsyncClient() as files:
        with pytest.raises(httpx.RemoteProtocolError):
            await files.get(url)
        with pytest.raises(httpx.RemoteProtocolError):
            await files.get(url)
        assert (await files.get(url)).content == mp4_bytes()
    half, lie, _whole = fake.requests[-3:]
    assert half.sent_body_bytes == len(mp4_bytes()) // 2 and lie.sent_body_bytes == len(mp4_bytes())
    assert fake.downloads_of(task_id) == 3


async def test_half_body_on_a_status_answer_is_a_protocol_error(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`half_body` works on JSON answers too."""
    task_id = await create(client)
    fake.add_fault("status", "half_body")
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(f"{TASKS}/{task_id}")


async def test_truncate_unsized_gives_fewer_bytes_without_an_error(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """A body without Content-Length cut short reads as a complete, shorter body."""
    task_id = await create(client)
    fake.add_fault("download", "truncate_unsized", fraction=0.25)
    async with httpx.AsyncClient() as files:
        cut = await files.get(f"{fake.url}/files/{task_id}.mp4")
    assert cut.status_code == 200 and "content-length" not in cut.headers
    assert cut.content == mp4_bytes()[: int(len(mp4_bytes()) * 0.25)]


async def test_http_status_answers_an_ark_envelope_with_retry_after(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`http_status` answers the status and code asked for, with Retry-After, and creates nothing."""
    fake.add_fault("create", "http_status", times=2, status=429, retry_after=2)
    fake.add_fault("create", "http_status", status=503, code="ServerOverloaded")
    first = await client.post(TASKS, json=create_body())
    second = await client.post(TASKS, json=create_body())
    third = await client.post(TASKS, json=create_body())
    assert (first.status_code, first.headers["retry-after"]) == (429, "2")
    error = first.json()["error"]
    assert error["code"] == "RateLimitExceeded.EndpointRPMExceeded" and error["type"] == "TooManyRequests"
    assert second.status_code == 429
    assert (third.status_code, third.json()["error"]["code"]) == (503, "ServerOverloaded")
    assert fake.creates == 0
    await create(client)
    assert fake.creates == 1


async def test_slow_answers_late(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`slow` holds the answer for `delay` seconds: a client with a shorter timeout gives up."""
    task_id = await create(client)
    fake.add_fault("status", "slow", delay=1.0)
    with pytest.raises(httpx.ReadTimeout):
        await client.get(f"{TASKS}/{task_id}", timeout=0.1)
    assert (await client.get(f"{TASKS}/{task_id}")).status_code == 200


async def test_an_answer_the_client_gave_up_on_is_abandoned_not_delivered(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """A read time-out before the answer (it comes late) or in the middle of it (it drips): the client hung up, so
    that answer is `abandoned` and what follows is a retry; the answer read whole is the one delivery."""
    task_id = await create(client)
    url = f"{fake.url}/files/{task_id}.mp4"
    fake.add_fault("download", "slow", delay=0.6)
    fake.add_fault("download", "drip", interval=0.6)
    async with httpx.AsyncClient(timeout=0.3) as files:
        for _ in range(2):
            with pytest.raises(httpx.ReadTimeout):
                await files.get(url)
        assert (await files.get(url)).content == mp4_bytes()
    with anyio.fail_after(5):
        while sum(r.abandoned for r in fake.requests) < 2:
            await anyio.sleep(0.01)
    late, dripped, whole = fake.requests[-3:]
    assert (late.fault, dripped.fault, whole.fault) == ("slow", "drip", None)
    assert late.abandoned and dripped.abandoned and not whole.abandoned
    assert fake.file_requests_of(task_id) == 3 and fake.deliveries_of(task_id) == 1


async def test_drip_creates_the_task_and_sends_its_answer_a_byte_at_a_time(fake: FakeArk) -> None:
    """`drip`: the task is made at once; the answer comes one byte per `interval`, each well within a read time-out,
    so only a deadline on the whole exchange ends it."""
    fake.add_fault("create", "drip", interval=0.2)
    body = json.dumps(create_body()).encode()
    head = f"POST {API}{TASKS} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    port = int(fake.url.rsplit(":", 1)[1])
    arrivals: list[tuple[float, bytes]] = []
    with anyio.fail_after(5):
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(head + body)
            while len(arrivals) < 5:
                arrivals.append((time.monotonic(), await stream.receive()))
                assert fake.creates == 1
    assert [piece for _at, piece in arrivals] == [b"H", b"T", b"T", b"P", b"/"]
    # Spread out (the first two may arrive together: loopback stacks may hold back a lone first byte).
    assert arrivals[-1][0] - arrivals[0][0] > 0.5


async def test_echo_key_puts_the_key_where_promised(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """Each `echo_key` place carries the bearer key: error code, request id, create answer, task error, status."""
    fake.add_fault("status", "echo_key", where="error_code")
    fake.add_fault("list", "echo_key", where="request_id")
    fake.add_fault("create", "echo_key", where="create_without_id")
    fake.add_fault("status", "echo_key", where="task_error")
    fake.add_fault("status", "echo_key", where="bad_status")

    made = await client.post(TASKS, json=create_body())
    assert made.json() == {"message": KEY} and fake.creates == 1
    (task,) = fake.tasks.values()
    coded = await client.get(f"{TASKS}/{task.id}")
    assert coded.status_code == 400 and coded.json()["error"]["code"] == KEY
    listed = await client.get(TASKS)
    assert listed.headers["x-request-id"] == KEY and listed.json()["items"][0]["id"] == task.id
    failed = (await client.get(f"{TASKS}/{task.id}")).json()
    assert failed["status"] == "failed" and failed["error"]["message"].index(KEY) > 400
    assert (await client.get(f"{TASKS}/{task.id}")).json()["status"] == KEY
    assert (await client.get(f"{TASKS}/{task.id}")).json()["status"] == "running"


async def test_redirect_loop_makes_httpx_give_up(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`redirect_loop` redirects the download to itself until the client's redirect limit."""
    task_id = await create(client)
    fake.add_fault("download", "redirect_loop")
    async with httpx.AsyncClient(follow_redirects=True) as files:
        with pytest.raises(httpx.TooManyRedirects):
            await files.get(f"{fake.url}/files/{task_id}.mp4?X-Tos-Expires=86400")
        assert (await files.get(f"{fake.url}/files/{task_id}.mp4")).content == mp4_bytes()
    assert fake.downloads_of(task_id) == 1


async def test_bad_encoding_fails_to_decode(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`bad_encoding` labels a plain body gzip, which httpx cannot decode."""
    task_id = await create(client)
    fake.add_fault("download", "bad_encoding")
    async with httpx.AsyncClient() as files:
        with pytest.raises(httpx.DecodingError):
            await files.get(f"{fake.url}/files/{task_id}.mp4")


async def test_no_video_url_reports_success_without_a_url_for_a_while(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`no_video_url` answers succeeded without content.video_url for `times` answers, status and list alike."""
    task_id = await create(client)
    age(fake.tasks[task_id], 61.0)
    fake.add_fault("status", "no_video_url", times=2)
    fake.add_fault("list", "no_video_url")
    for _ in range(2):
        answer = (await client.get(f"{TASKS}/{task_id}")).json()
        assert answer["status"] == "succeeded" and "video_url" not in answer["content"]
    item = (await client.get(TASKS)).json()["items"][0]
    assert item["status"] == "succeeded" and "video_url" not in item["content"]
    assert "video_url" in (await client.get(f"{TASKS}/{task_id}")).json()["content"]


async def test_oversize_serves_the_declared_size(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`oversize` serves `size` bytes, starting with the MP4, under a true Content-Length."""
    task_id = await create(client)
    size = 3 * 1024 * 1024
    fake.add_fault("download", "oversize", size=size)
    async with httpx.AsyncClient() as files:
        big = await files.get(f"{fake.url}/files/{task_id}.mp4")
    assert int(big.headers["content-length"]) == size and len(big.content) == size
    assert big.content.startswith(mp4_bytes()) and big.content[-10:] == bytes(10)


async def test_expired_url_is_a_403_access_denied(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`expired_url` answers the download 403 with an XML AccessDenied body."""
    task_id = await create(client)
    fake.add_fault("download", "expired_url")
    async with httpx.AsyncClient() as files:
        denied = await files.get(f"{fake.url}/files/{task_id}.mp4")
    assert denied.status_code == 403 and b"<Code>AccessDenied</Code>" in denied.content


async def test_a_fault_with_a_task_id_only_hits_that_task(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """A fault bound to a task id skips requests about other tasks; times=-1 never runs out."""
    first = await create(client)
    second = await create(client)
    fake.add_fault("status", "http_status", times=-1, task_id=second, status=500)
    for _ in range(3):
        assert (await client.get(f"{TASKS}/{first}")).status_code == 200
        assert (await client.get(f"{TASKS}/{second}")).status_code == 500
    assert len(fake.faults) == 1


async def test_add_fault_refuses_unknown_or_misplaced_kinds(fake: FakeArk) -> None:
    """A typo in a route, kind or echo place fails loudly instead of silently never firing."""
    with pytest.raises(ValueError, match="route"):
        fake.add_fault("crate", "drop_before")
    with pytest.raises(ValueError, match="kind"):
        fake.add_fault("create", "drop_everything")
    with pytest.raises(ValueError, match="does not apply"):
        fake.add_fault("create", "redirect_loop")
    with pytest.raises(ValueError, match="does not apply"):
        fake.add_fault("download", "echo_key", where="task_error")


async def test_the_fake_answers_within_bounds_when_many_clients_poll_at_once(fake: FakeArk) -> None:
    """Twenty clients polling concurrently are all answered."""
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        task_id = await create(http)

        async def poll() -> None:
            for _ in range(5):
                assert (await http.get(f"{TASKS}/{task_id}")).status_code == 200

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                for _ in range(20):
                    group.start_soon(poll)
    assert fake.polls_of(task_id) == 100


async def test_hold_task_keeps_the_nth_task_running_until_released(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """`hold_task(2)`: the second task created stays `running` long past its render time, the others do not; once
    released it succeeds, its updated_at no earlier than the release."""
    fake.render_seconds = 0.0
    release = fake.hold_task(2)
    first, second, third = [await create(client) for _ in range(3)]
    for task_id in (first, second, third):
        age(fake.tasks[task_id], 3600.0)
    statuses = [(await client.get(f"{TASKS}/{t}")).json()["status"] for t in (first, second, third)]
    assert statuses == ["succeeded", "running", "succeeded"]
    assert [i["status"] for i in (await client.get(TASKS)).json()["items"]] == ["succeeded", "running", "succeeded"]
    released = time.time()
    release.set()
    done = (await client.get(f"{TASKS}/{second}")).json()
    assert done["status"] == "succeeded" and done["content"]["video_url"].endswith(f"{second}.mp4?X-Tos-Expires=86400")
    assert done["updated_at"] >= int(released)


async def test_hold_answer_creates_the_task_and_holds_its_answer_until_released(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """`hold_answer` on create: the task exists (listed) while the client still waits for its id; a client that
    gives up never learns it; released, the next create is answered normally."""
    release = anyio.Event()
    fake.add_fault("create", "hold_answer", release=release)
    with pytest.raises(httpx.ReadTimeout):
        await client.post(TASKS, json=create_body(), timeout=0.5)
    assert fake.creates == 1
    (made,) = fake.tasks.values()
    assert [i["id"] for i in (await client.get(TASKS)).json()["items"]] == [made.id]
    release.set()
    assert await create(client) != made.id and fake.creates == 2


# ---- real clips (real_clips=True) -----------------------------------------------------------------------------------


def decoded(mp4: bytes) -> tuple[float, int, int, bool, list[Image.Image]]:
    """(seconds, width, height, has sound, every picture) of an MP4, read with PyAV."""
    with av.open(io.BytesIO(mp4), "r") as container:
        stream = container.streams.video[0]
        assert stream.duration is not None and stream.time_base is not None
        seconds = float(stream.duration * stream.time_base)
        pictures = [frame.to_image() for frame in container.decode(stream)]
        return seconds, stream.width, stream.height, bool(container.streams.audio), pictures


def first_frame_body(url: str, **fields: Any) -> dict[str, Any]:
    content = [
        {"type": "text", "text": "it goes on"},
        {"type": "image_url", "image_url": {"url": url}, "role": "first_frame"},
    ]
    return {"model": MODEL, "content": content, **fields}


async def files_of(fake: FakeArk, task_id: str) -> tuple[bytes, bytes]:
    async with httpx.AsyncClient(timeout=30.0) as files:
        video = await files.get(f"{fake.url}/files/{task_id}.mp4")
        frame = await files.get(f"{fake.url}/files/{task_id}.png")
    assert video.status_code == 200 and frame.status_code == 200
    assert (video.headers["content-type"], frame.headers["content-type"]) == ("video/mp4", "image/png")
    return video.content, frame.content


async def test_real_clips_follow_the_request_and_their_png_is_their_last_picture(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """Each task serves a clip of its own: the length asked (duration or frames), the ratio asked, sound when asked;
    its PNG is that clip's last picture (the code strip reads this task's last index), made once and kept."""
    fake.real_clips = True
    square = await create(client, duration=3, ratio="1:1", generate_audio=True, return_last_frame=True)
    short = await create(client, frames=30, ratio="16:9")
    video, png = await files_of(fake, square)
    seconds, width, height, sound, pictures = decoded(video)
    assert (seconds, width, height, sound, len(pictures)) == (3.0, 180, 180, True, 72)
    assert read_code(pictures[-1]) == (shot_tag(square), 71) and read_code(pictures[0]) == (shot_tag(square), 0)
    with Image.open(io.BytesIO(png)) as opened:
        last = opened.convert("RGB")
    assert last.size == (360, 360)
    small = last.resize((180, 180), Image.Resampling.NEAREST)
    assert read_code(small) == (shot_tag(square), 71)
    difference = ImageStat.Stat(ImageChops.difference(small, pictures[-1])).mean
    assert max(difference) < 6, difference  # the same picture, less what H.264 lost
    clip = await fake.clip_of(square)
    assert (video, png) == (clip.mp4, clip.last_frame_png) and await files_of(fake, square) == (video, png)
    assert fake.clips[square] is clip and fake.downloads_of(square) == 2

    other_video, _ = await files_of(fake, short)
    seconds, width, height, sound, pictures = decoded(other_video)
    assert (seconds, width, height, sound, len(pictures)) == (1.25, 320, 180, False, 30)
    assert read_code(pictures[-1]) == (shot_tag(short), 29)


async def test_a_real_clip_starts_on_its_first_frame_inline_or_at_the_fakes_own_url(
    fake: FakeArk, client: httpx.AsyncClient
) -> None:
    """A first frame given as a data: URL, or as the fake's own last-frame URL, is the clip's frame 0 (and its shape
    decides an adaptive ratio): the previous clip's last picture, code strip and all."""
    fake.real_clips = True
    before = await create(client, duration=2, ratio="9:16", return_last_frame=True)
    _, png = await files_of(fake, before)
    inline = "data:image/png;base64," + base64.b64encode(png).decode()
    for url in (inline, f"{fake.url}/files/{before}.png?X-Tos-Expires=86400"):
        answer = await client.post(TASKS, json=first_frame_body(url, duration=2, ratio="adaptive"))
        after = answer.json()["id"]
        video, _ = await files_of(fake, after)
        seconds, width, height, _, pictures = decoded(video)
        assert (seconds, width, height) == (2.0, 180, 320)
        assert read_code(pictures[0]) == (shot_tag(before), 47) and read_code(pictures[1]) == (shot_tag(after), 1)


async def test_file_faults_still_apply_to_real_clips(fake: FakeArk, client: httpx.AsyncClient) -> None:
    """Cut bodies, ranges, expired links and a body that is no video play on a task's own clip as on the sample."""
    fake.real_clips = True
    task_id = await create(client, duration=2, return_last_frame=True)
    clip = await fake.clip_of(task_id)
    url = f"{fake.url}/files/{task_id}.mp4"
    fake.add_fault("download", "half_body")
    fake.add_fault("download", "truncate_unsized", fraction=0.25)
    fake.add_fault("frame", "expired_url")
    fake.add_fault("download", "not_video")
    async with httpx.AsyncClient() as files:
        with pytest.raises(httpx.RemoteProtocolError):
            await files.get(url)
        assert fake.requests[-1].sent_body_bytes == len(clip.mp4) // 2
        assert (await files.get(url)).content == clip.mp4[: len(clip.mp4) // 4]
        assert (await files.get(f"{fake.url}/files/{task_id}.png")).status_code == 403
        assert b"<html>" in (await files.get(url)).content
        tail = await files.get(url, headers={"Range": "bytes=100-"})
        assert tail.status_code == 206 and tail.content == clip.mp4[100:]
        assert tail.headers["content-range"] == f"bytes 100-{len(clip.mp4) - 1}/{len(clip.mp4)}"
        assert (await files.get(url)).content == clip.mp4 != mp4_bytes()


def test_early_polls_tells_one_follower_from_two_however_late_the_fake_reads() -> None:
    """The replica tests' judge (tests.fakes.replicas.early_polls): one follower's polls each come an interval after the
    answer before, however late the fake reads them, and none is early; a second follower's polls among them are,
    and so is a hand-over's first (immediate) poll."""
    from tests.fakes.fake_ark import TASKS, Recorded
    from tests.fakes.replicas import early_polls

    fake = FakeArk()
    task = fake.add_foreign_task(created_at=1000.0)

    def poll(read: float, answered: float | None) -> None:
        fake.requests.append(Recorded("GET", f"{TASKS}/{task.id}", {}, {}, b"", read, answered=answered))

    # One follower, interval 0.5, on a loaded machine: reads lag by up to 0.3 s, answers by up to 0.2 s more.
    for read, answered in [(1000.8, 1001.0), (1001.5, 1001.5), (1002.3, 1002.5), (1003.0, 1003.01)]:
        poll(read, answered)
    assert early_polls(fake, task.id, 0.5) == []
    poll(1003.3, 1003.3)  # a second follower's poll, 0.29 s after the last answer
    poll(1003.6, 1003.6)  # and the first follower's next, 0.3 s after that one's answer
    assert [round(at, 2) for at, _ in early_polls(fake, task.id, 0.5)] == [1003.3, 1003.6]
