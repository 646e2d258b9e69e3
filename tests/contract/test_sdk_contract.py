"""Contract tests against the vendors' own code: the Ark SDK (`volcengine-ark-runtime`) and the `openai` SDK.

(a) The bodies our dialects build equal, field by field, what the official SDKs send for the same parameters
    (each SDK's real request, captured on a loopback server).
(b) Each SDK drives the sandbox end to end, and every answer parses into the SDK's own types with the declared
    field types, so the sandbox is faithful enough to test against.

The SDKs are synchronous clients: they run in a worker thread against servers on this event loop.
"""

# The Ark SDK ships without type information (no py.typed); openai 3.x marks its videos API deprecated (the Sora
# shutdown), which is the API the OpenAI-style gateways imitate.
# pyright: reportMissingTypeStubs=false, reportDeprecated=false

from __future__ import annotations

import base64
import email.parser
import email.policy
import functools
import json
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import httpx
import openai
import pytest
from openai.types import Video, VideoDeleteResponse
from volcenginesdkarkruntime import Ark
from volcenginesdkarkruntime._exceptions import ArkAPIStatusError
from volcenginesdkarkruntime.types.content_generation.content_generation_task import ContentGenerationTask
from volcenginesdkarkruntime.types.content_generation.content_generation_task_id import ContentGenerationTaskID
from volcenginesdkarkruntime.types.content_generation.list_content_generation_tasks_response import (
    ListContentGenerationTasksResponse,
)

from seedance_mcp.catalog import MODELS, MODELS_BY_KEY, PRESETS, ModelSpec
from seedance_mcp.providers.dialects import ark
from seedance_mcp.providers.dialects.openai_videos import OpenAIVideosDialect
from seedance_mcp.requests import VideoArguments
from seedance_mcp.sandbox import SandboxServer, SandboxState, running_sandbox
from seedance_mcp.validation import validate_request
from tests.conftest import SECRET_KEY, png_bytes
from tests.fakes.tiny_http import Seen, answer, serving

pytestmark = [
    pytest.mark.anyio,
    # openai 3.x marks the videos API deprecated ("The Sora API is scheduled to permanently shut down …").
    pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning"),
]

T = TypeVar("T")
PROMPT = "a kitten yawns in the sun"
IMG1, IMG2 = "https://e.com/first.png", "https://e.com/last.png"
PNG = png_bytes(640, 640)
PNG_DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()


async def in_thread(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run one blocking SDK call in a worker thread."""
    return await anyio.to_thread.run_sync(functools.partial(call, *args, **kwargs))


def model_id(key: str) -> str:
    return MODELS_BY_KEY[key].cn_id


ARK_DEFAULT = PRESETS["ark"].default_model
"""The ark preset's default model (2.0 mini since 1.5 pro was retired on BytePlus: one sold today, with a price)."""
OPENAI_DEFAULT = PRESETS["openai-compatible"].default_model


def ark_request(preset_name: str = "ark", **arguments: Any) -> Any:
    preset = PRESETS[preset_name]
    return validate_request(VideoArguments(prompt=PROMPT, **arguments), preset, preset.default_model)


def asset_item(kind: str, asset: str, role: str) -> dict[str, Any]:
    return {"type": kind, kind: {"url": asset}, "role": role}


def text(prompt: str = PROMPT) -> dict[str, Any]:
    return {"type": "text", "text": prompt}


def image(url: str, role: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}, "role": role}


# --- (a) our bodies equal the SDKs' bodies ---------------------------------------------------------------------

# Left unset, return_last_frame is sent as true on the Ark dialect (free there; it is the picture a finished result
# shows the model), so the SDK call that makes the same request passes it too. A draft has no last frame.
LAST_FRAME = {"return_last_frame": True}

# name -> (generate_video arguments, the Ark SDK's create() parameters for the same request)
ARK_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text only": ({}, {"model": model_id(ARK_DEFAULT), "content": [text()], **LAST_FRAME}),
    "every setting": (
        {
            "model": "1.5-pro",
            "resolution": "1080p",
            "ratio": "21:9",
            "duration": 7,
            "seed": 42,
            "camera_fixed": True,
            "watermark": True,
            "generate_audio": False,
            "return_last_frame": True,
            "service_tier": "flex",
        },
        {
            "model": model_id("1.5-pro"),
            "content": [text()],
            "resolution": "1080p",
            "ratio": "21:9",
            "duration": 7,
            "seed": 42,
            "camera_fixed": True,
            "watermark": True,
            "generate_audio": False,
            "return_last_frame": True,
            "service_tier": "flex",
        },
    ),
    "frames instead of duration": (
        {"model": "1.0-pro", "frames": 121, "seed": -1},
        {"model": model_id("1.0-pro"), "content": [text()], "frames": 121, "seed": -1, **LAST_FRAME},
    ),
    "first frame URL": (
        {"first_frame": IMG1},
        {"model": model_id(ARK_DEFAULT), "content": [text(), image(IMG1, "first_frame")], **LAST_FRAME},
    ),
    "first frame data URL": (
        {"first_frame": PNG_DATA_URL},
        {"model": model_id(ARK_DEFAULT), "content": [text(), image(PNG_DATA_URL, "first_frame")], **LAST_FRAME},
    ),
    "first and last frame": (
        {"model": "1.0-pro", "first_frame": IMG1, "last_frame": IMG2, "ratio": "adaptive"},
        {
            "model": model_id("1.0-pro"),
            "content": [text(), image(IMG1, "first_frame"), image(IMG2, "last_frame")],
            "ratio": "adaptive",
            **LAST_FRAME,
        },
    ),
    "reference images (1.0 lite)": (
        {"model": "1.0-lite-i2v", "reference_images": [IMG1, IMG2], "resolution": "720p"},
        {
            "model": model_id("1.0-lite-i2v"),
            "content": [text(), image(IMG1, "reference_image"), image(IMG2, "reference_image")],
            "resolution": "720p",
            **LAST_FRAME,
        },
    ),
    "multimodal references (2.0)": (
        {
            "model": "2.0",
            "reference_images": [IMG1],
            "reference_videos": ["https://e.com/v.mp4"],
            "reference_audios": ["https://e.com/a.mp3"],
            "generate_audio": True,
            "duration": -1,
        },
        {
            "model": model_id("2.0"),
            "content": [
                text(),
                image(IMG1, "reference_image"),
                {"type": "video_url", "video_url": {"url": "https://e.com/v.mp4"}, "role": "reference_video"},
                {"type": "audio_url", "audio_url": {"url": "https://e.com/a.mp3"}, "role": "reference_audio"},
            ],
            "generate_audio": True,
            "duration": -1,
            **LAST_FRAME,
        },
    ),
    "asset ids in every reference field (2.5)": (
        {
            "model": "2.5",
            "reference_images": ["asset://asset-img-1"],
            "reference_videos": ["asset://asset-vid-1"],
            "reference_audios": ["asset://asset-aud-1"],
        },
        {
            "model": model_id("2.5"),
            "content": [
                text(),
                asset_item("image_url", "asset://asset-img-1", "reference_image"),
                asset_item("video_url", "asset://asset-vid-1", "reference_video"),
                asset_item("audio_url", "asset://asset-aud-1", "reference_audio"),
            ],
            "duration": 5,
            **LAST_FRAME,
        },
    ),
    "asset ids as first and last frame (2.0 fast)": (
        {"model": "2.0-fast", "first_frame": "asset://asset-a", "last_frame": "asset://asset-b"},
        {
            "model": model_id("2.0-fast"),
            "content": [text(), image("asset://asset-a", "first_frame"), image("asset://asset-b", "last_frame")],
            **LAST_FRAME,
        },
    ),
    "2.5 draft": (
        {"model": "2.5", "draft": True},
        {"model": model_id("2.5"), "content": [text()], "draft": True, "resolution": "480p", "duration": 5},
    ),
    "2.5 final from a draft (the draft_task alone, 1080p left to the provider)": (
        {"model": "2.5", "draft_task_id": "cgt-20261207000000-abcde"},
        {
            "model": model_id("2.5"),
            "content": [{"type": "draft_task", "draft_task": {"id": "cgt-20261207000000-abcde"}}],
            **LAST_FRAME,
        },
    ),
    "draft": (
        {"model": "1.5-pro", "draft": True, "generate_audio": True},
        {
            "model": model_id("1.5-pro"),
            "content": [text()],
            "draft": True,
            "resolution": "480p",
            "generate_audio": True,
        },
    ),
}


@pytest.fixture
async def capture() -> AsyncGenerator[Any]:
    """A loopback server that records each request and answers as Ark and OpenAI answer a create."""

    def handler(seen: Seen) -> bytes:
        if seen.path.endswith("/videos"):
            created = {"id": "video_1", "object": "video", "model": "m", "status": "queued", "progress": 0}
            return answer(200, {**created, "created_at": 1, "seconds": "4", "size": "1280x720"})
        return answer(200, {"id": "cgt-20260101000000-abcde"})

    async with serving(handler) as server:
        yield server


def without_nulls(body: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in body.items() if value is not None}


# The same on BytePlus (its ids; 4k on 2.5 since 2026-11-13).
BYTEPLUS_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "4k on 2.5": (
        {"model": "2.5", "resolution": "4k", "ratio": "16:9"},
        {
            "model": MODELS_BY_KEY["2.5"].byteplus_id,
            "content": [text()],
            "resolution": "4k",
            "ratio": "16:9",
            "duration": 5,
            **LAST_FRAME,
        },
    ),
    "2.5 Flash at 720p": (
        {"model": "2.5-flash", "resolution": "720p", "output_format": "mp4"},
        {
            "model": MODELS_BY_KEY["2.5-flash"].byteplus_id,
            "content": [text()],
            "resolution": "720p",
            "duration": 5,
            "output_format": "mp4",
            **LAST_FRAME,
        },
    ),
}


@pytest.mark.parametrize(
    ("preset_name", "case"), [*(("ark", c) for c in sorted(ARK_CASES)), *(("byteplus", c) for c in BYTEPLUS_CASES)]
)
async def test_our_ark_body_equals_the_ark_sdks_body_field_by_field(preset_name: str, case: str, capture: Any) -> None:
    """For each argument set, the Ark SDK's create body (its nulls aside) is exactly the body our dialect builds."""
    arguments, sdk_parameters = (ARK_CASES if preset_name == "ark" else BYTEPLUS_CASES)[case]
    client = Ark(base_url=f"{capture.url}/api/v3", api_key=SECRET_KEY, max_retries=0, timeout=10)
    created = await in_thread(client.content_generation.tasks.create, **sdk_parameters)
    assert isinstance(created, ContentGenerationTaskID) and created.id.startswith("cgt-")
    seen: Seen = capture.seen[-1]
    sent = json.loads(seen.body)
    assert set(sent) >= {"model", "content", "safety_identifier", "output_format"}  # every field, unset as null
    ours = ark.ArkDialect().create_request(ark_request(preset_name, **arguments), f"{capture.url}/api/v3")
    assert ours.json_body is not None
    sdk_body = without_nulls(sent)
    for name in sorted(set(sdk_body) | set(ours.json_body)):
        assert ours.json_body.get(name) == sdk_body.get(name), f"{case}: field {name!r} differs"
    assert (seen.method, seen.path) == (ours.method, httpx.URL(ours.url).path)
    assert seen.bearer == SECRET_KEY


def multipart_fields(seen: Seen) -> dict[str, Any]:
    """A multipart/form-data body read with the standard library: text fields as str, files as (type, bytes)."""
    head = f"Content-Type: {seen.headers['content-type']}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + seen.body)
    assert message.is_multipart()
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        if part.get_filename():
            fields[name] = (part.get_content_type(), payload)
        else:
            fields[name] = payload.decode()
    return fields


# name -> (generate_video arguments, the openai SDK's videos.create() parameters for the same request)
OPENAI_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "prompt only": ({}, {"prompt": PROMPT, "model": model_id(OPENAI_DEFAULT)}),
    "seconds and size": (
        {"duration": 8, "resolution": "720p", "ratio": "16:9"},
        {"prompt": PROMPT, "model": model_id(OPENAI_DEFAULT), "seconds": "8", "size": "1280x720"},
    ),
    "portrait on 1.0 pro": (
        {"model": "1.0-pro", "duration": 4, "resolution": "720p", "ratio": "9:16"},
        {"prompt": PROMPT, "model": model_id("1.0-pro"), "seconds": "4", "size": "704x1248"},
    ),
    "first frame": (
        {"first_frame": PNG_DATA_URL, "duration": 12, "ratio": "1:1"},
        {
            "prompt": PROMPT,
            "model": model_id(OPENAI_DEFAULT),
            "seconds": "12",
            "size": "960x960",
            "input_reference": ("first.png", PNG, "image/png"),
        },
    ),
}


@pytest.mark.parametrize("case", sorted(OPENAI_CASES))
async def test_our_openai_body_carries_the_openai_sdks_fields_and_values(case: str, capture: Any) -> None:
    """The SDK sends multipart: its field names and values are ours; its file part is our input_reference image."""
    arguments, sdk_parameters = OPENAI_CASES[case]
    client = openai.OpenAI(base_url=f"{capture.url}/v1", api_key=SECRET_KEY, max_retries=0, timeout=10)
    await in_thread(client.videos.create, **sdk_parameters)
    seen: Seen = capture.seen[-1]
    assert seen.headers["content-type"].startswith("multipart/form-data")
    sdk_fields = multipart_fields(seen)
    preset = PRESETS["openai-compatible"]
    request = validate_request(VideoArguments(prompt=PROMPT, **arguments), preset, preset.default_model)
    for base in (capture.url, f"{capture.url}/v1"):  # with or without the /v1 the SDK's base URL carries
        ours = OpenAIVideosDialect().create_request(request, base)
        assert (seen.method, seen.path) == (ours.method, httpx.URL(ours.url).path)
    body = ours.json_body
    assert body is not None and set(body) == set(sdk_fields)
    for name, value in sdk_fields.items():
        if name == "input_reference":
            media_type, data = value
            reference = body["input_reference"]["image_url"]
            assert reference == f"data:{media_type};base64,{base64.b64encode(data).decode()}"
        else:
            assert body[name] == value, f"{case}: field {name!r} differs"


# --- (b) each SDK drives the sandbox end to end -----------------------------------------------------------------


@pytest.fixture
async def sandbox() -> AsyncGenerator[SandboxServer]:
    async with running_sandbox(SandboxState(render_seconds=0.3)) as server:
        yield server


@pytest.fixture
def ark_client(sandbox: SandboxServer) -> Ark:
    return Ark(base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, max_retries=0, timeout=10)


async def ark_until(client: Ark, task_id: str, *statuses: str) -> ContentGenerationTask:
    with anyio.fail_after(10):
        while True:
            task = await in_thread(client.content_generation.tasks.get, task_id=task_id)
            if task.status in statuses:
                return task
            await anyio.sleep(0.05)


def assert_ark_task_types(task: ContentGenerationTask) -> None:
    """Every field the sandbox sets has the type the SDK declares."""
    assert isinstance(task, ContentGenerationTask)
    assert isinstance(task.id, str) and isinstance(task.model, str) and isinstance(task.status, str)
    for name in ("created_at", "updated_at", "seed", "framespersecond", "execution_expires_after"):
        assert type(getattr(task, name)) is int, name
    assert isinstance(task.resolution, str) and isinstance(task.ratio, str) and isinstance(task.service_tier, str)
    assert type(task.duration) is int or type(task.frames) is int
    if task.status == "succeeded":
        assert isinstance(task.content.video_url, str)
        assert type(task.usage.completion_tokens) is int and type(task.usage.total_tokens) is int
        assert task.error is None
    for name in ("generate_audio", "draft"):
        value = getattr(task, name, None)
        assert value is None or type(value) is bool, name


async def test_the_ark_sdk_creates_polls_lists_downloads_and_deletes_on_the_sandbox(
    sandbox: SandboxServer, ark_client: Ark
) -> None:
    """create (the SDK's nulls read as absent), get to success, list with filters, fetch the media, delete."""
    created = await in_thread(
        ark_client.content_generation.tasks.create,
        model=model_id("1.5-pro"),
        content=[text(), image(IMG1, "first_frame")],
        ratio="4:3",
        duration=4,
        seed=7,
        return_last_frame=True,
        safety_identifier="user-1",
        execution_expires_after=3600,
    )
    assert isinstance(created, ContentGenerationTaskID) and created.safety_identifier == "user-1"
    task = await ark_until(ark_client, created.id, "succeeded")
    assert_ark_task_types(task)
    assert (task.ratio, task.duration, task.seed, task.resolution) == ("4:3", 4, 7, "720p")
    assert (task.safety_identifier, task.execution_expires_after, task.service_tier) == ("user-1", 3600, "default")
    assert task.generate_audio is True and task.draft is False

    listed = await in_thread(
        ark_client.content_generation.tasks.list,
        page_num=1,
        page_size=10,
        status="succeeded",
        task_ids=[created.id, "cgt-20000101000000-nope0"],
        model=model_id("1.5-pro"),
    )
    assert isinstance(listed, ListContentGenerationTasksResponse)
    assert type(listed.total) is int and [t.id for t in listed.items] == [created.id]
    assert_ark_task_types(listed.items[0])
    other_model = await in_thread(ark_client.content_generation.tasks.list, model=model_id("2.0"))
    assert other_model.total == 0 and other_model.items == []
    second_page = await in_thread(ark_client.content_generation.tasks.list, page_num=2, page_size=1)
    assert second_page.total == 1 and second_page.items == []

    async with httpx.AsyncClient() as http:
        video = await http.get(task.content.video_url)
        frame = await http.get(task.content.last_frame_url)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert frame.status_code == 200 and frame.content.startswith(b"\x89PNG")

    deleted = await in_thread(ark_client.content_generation.tasks.delete, created.id)
    assert not deleted  # Ark answers 200 with no body
    with pytest.raises(ArkAPIStatusError) as gone:
        await in_thread(ark_client.content_generation.tasks.get, task_id=created.id)
    assert gone.value.status_code == 404


async def test_the_ark_sdks_delete_cancels_a_queued_task_and_is_refused_for_a_running_one(
    sandbox: SandboxServer, ark_client: Ark
) -> None:
    """queued → cancelled; deleting it again, or deleting a running task, is a 400 the SDK raises."""
    create = ark_client.content_generation.tasks.create
    queued = await in_thread(create, model=model_id("2.0"), content=[text("wait [[queue=30]]")])
    running = await in_thread(create, model=model_id("2.0"), content=[text("busy [[queue=0]] [[render=30]]")])
    await in_thread(ark_client.content_generation.tasks.delete, queued.id)
    cancelled = await in_thread(ark_client.content_generation.tasks.get, task_id=queued.id)
    assert cancelled.status == "cancelled"
    assert_ark_task_types(cancelled)
    for task_id in (queued.id, running.id):
        with pytest.raises(ArkAPIStatusError) as refused:
            await in_thread(ark_client.content_generation.tasks.delete, task_id)
        assert refused.value.status_code == 400 and refused.value.code == "InvalidParameter.TaskStatus"
    with pytest.raises(ArkAPIStatusError) as unknown:
        await in_thread(ark_client.content_generation.tasks.delete, "cgt-20000101000000-nope0")
    assert unknown.value.status_code == 404


async def test_flex_tasks_are_listed_only_when_the_sdk_asks_for_the_flex_tier(
    sandbox: SandboxServer, ark_client: Ark
) -> None:
    """As Ark: the list shows default-tier tasks unless `filter.service_tier=flex` is sent."""
    create = ark_client.content_generation.tasks.create
    flex = await in_thread(create, model=model_id("1.5-pro"), content=[text()], service_tier="flex")
    default = await in_thread(create, model=model_id("1.5-pro"), content=[text()])
    plain = await in_thread(ark_client.content_generation.tasks.list)
    flexible = await in_thread(ark_client.content_generation.tasks.list, service_tier="flex")
    assert [t.id for t in plain.items] == [default.id]
    assert [t.id for t in flexible.items] == [flex.id] and flexible.items[0].service_tier == "flex"


async def test_a_draft_task_item_renders_a_1_5_pro_draft_for_real(sandbox: SandboxServer, ark_client: Ark) -> None:
    """draft=true at 480p, then `{"type": "draft_task", …}`: the same picture (seed, ratio, length) at 720p."""
    create = ark_client.content_generation.tasks.create
    draft = await in_thread(
        create, model=model_id("1.5-pro"), content=[text()], draft=True, resolution="480p", ratio="9:16", seed=5
    )
    drafted = await ark_until(ark_client, draft.id, "succeeded")
    assert drafted.draft is True and drafted.resolution == "480p"
    final = await in_thread(
        create,
        model=model_id("1.5-pro"),
        content=[{"type": "draft_task", "draft_task": {"id": draft.id}}],
        resolution="720p",
    )
    task = await ark_until(ark_client, final.id, "succeeded")
    assert_ark_task_types(task)
    assert (task.draft_task_id, task.resolution, task.ratio, task.seed) == (draft.id, "720p", "9:16", 5)
    assert not task.draft
    with pytest.raises(ArkAPIStatusError) as not_a_draft:
        await in_thread(
            create, model=model_id("1.5-pro"), content=[{"type": "draft_task", "draft_task": {"id": final.id}}]
        )
    assert not_a_draft.value.status_code == 400


async def test_the_ark_sdk_makes_4k_drafts_finals_and_asset_references_on_the_sandbox_playing_byteplus() -> None:
    """On BytePlus's rules: 4k on 2.5 (billed at the 4k size), a 2.5 draft and its final from the draft_task alone
    (1080p unless asked), asset:// ids in every media kind; a final below 1080p, a draft_task with a text item and
    the retired 1.5 pro are refused as the provider refuses them."""
    async with running_sandbox(SandboxState(render_seconds=0.2, region="byteplus")) as server:
        with Ark(base_url=f"{server.url}/api/v3", api_key=SECRET_KEY, max_retries=0, timeout=10) as client:
            await _sdk_on_byteplus(client)


async def _sdk_on_byteplus(client: Ark) -> None:
    """The checks of the test above, with the client it opened."""
    create = client.content_generation.tasks.create
    v25 = MODELS_BY_KEY["2.5"].byteplus_id
    uhd = await in_thread(create, model=v25, content=[text()], resolution="4k", duration=5)
    task = await ark_until(client, uhd.id, "succeeded")
    assert_ark_task_types(task)
    assert task.resolution == "4k" and task.usage.completion_tokens == round(3840 * 2160 * 121 / 1024)

    draft = await in_thread(create, model=v25, content=[text()], draft=True, resolution="480p", seed=9)
    drafted = await ark_until(client, draft.id, "succeeded")
    assert drafted.draft is True and drafted.resolution == "480p"
    item = [{"type": "draft_task", "draft_task": {"id": draft.id}}]
    final = await in_thread(create, model=v25, content=item)
    finished = await ark_until(client, final.id, "succeeded")
    assert (finished.draft_task_id, finished.resolution, finished.seed) == (draft.id, "1080p", 9)

    assets = await in_thread(
        create,
        model=v25,
        content=[
            text(),
            asset_item("image_url", "asset://asset-img-1", "reference_image"),
            asset_item("video_url", "asset://asset-vid-1", "reference_video"),
            asset_item("audio_url", "asset://asset-aud-1", "reference_audio"),
        ],
        duration=5,
    )
    await ark_until(client, assets.id, "succeeded")

    refusals: list[tuple[dict[str, Any], int, str]] = [
        ({"model": v25, "content": item, "resolution": "720p"}, 400, "InvalidParameter.resolution"),
        ({"model": v25, "content": [text(), *item]}, 400, "InvalidParameter.content"),
        (
            {"model": MODELS_BY_KEY["1.5-pro"].byteplus_id, "content": [text()]},
            404,
            "InvalidEndpointOrModel.NotFound",
        ),
    ]
    for parameters, status, code in refusals:
        with pytest.raises(ArkAPIStatusError) as refused:
            await in_thread(create, **parameters)
        assert (refused.value.status_code, refused.value.code) == (status, code), parameters


def model_with(fact: str) -> ModelSpec:
    """A catalog model for which `fact` (a ModelSpec field) is set."""
    return next(spec for spec in MODELS if getattr(spec, fact, None))


async def test_the_sdks_newer_fields_are_accepted_and_echoed_as_the_catalog_allows(
    sandbox: SandboxServer, ark_client: Ark
) -> None:
    """output_format, omni_reference_task_type, priority and tools where the catalog offers them; refused elsewhere."""
    create = ark_client.content_generation.tasks.create
    formats = model_with("output_formats")
    mov = await in_thread(create, model=formats.cn_id, content=[text()], output_format="mov", duration=5)
    task = await ark_until(ark_client, mov.id, "succeeded")
    assert task.output_format == "mov" and httpx.URL(task.content.video_url).path.endswith(".mov")
    async with httpx.AsyncClient() as http:
        video = await http.get(task.content.video_url)
    assert video.headers["content-type"] == "video/quicktime" and video.content[4:8] == b"ftyp"

    editing = model_with("omni_reference_task_types")
    reference_video = {"type": "video_url", "video_url": {"url": "https://e.com/v.mp4"}, "role": "reference_video"}
    await in_thread(create, model=editing.cn_id, content=[text(), reference_video], omni_reference_task_type="edit")
    searching = model_with("web_search")
    tools: Any = [{"type": "web_search"}]  # the SDK declares ContentGenerationTool models but cannot serialise them
    searched = await in_thread(create, model=searching.cn_id, content=[text()], tools=tools, priority=9)
    echoed = await in_thread(ark_client.content_generation.tasks.get, task_id=searched.id)
    assert [tool.type for tool in echoed.tools] == ["web_search"] and echoed.priority == 9

    refusals: list[dict[str, Any]] = [
        {"model": model_id("1.0-pro"), "content": [text()], "output_format": "mov"},
        {"model": formats.cn_id, "content": [text()], "output_format": "avi"},
        {"model": editing.cn_id, "content": [text()], "omni_reference_task_type": "edit"},  # nothing to edit
        {"model": model_id("1.5-pro"), "content": [text()], "omni_reference_task_type": "auto"},
        {"model": model_id("1.5-pro"), "content": [text()], "tools": tools},
        {"model": model_id("1.5-pro"), "content": [text()], "execution_expires_after": 60},
        {"model": searching.cn_id, "content": [text()], "priority": 10},
    ]
    for parameters in refusals:
        with pytest.raises(ArkAPIStatusError) as refused:
            await in_thread(create, **parameters)
        assert refused.value.status_code == 400, parameters
        assert str(refused.value.code).startswith("InvalidParameter."), parameters


@pytest.fixture
def openai_client(sandbox: SandboxServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{sandbox.url}/v1", api_key=SECRET_KEY, max_retries=0, timeout=10)


def assert_video_types(video: Video) -> None:
    """Every field of the video object has the type `openai.types.Video` declares."""
    assert isinstance(video, Video) and video.object == "video"
    assert isinstance(video.id, str) and isinstance(video.model, str)
    assert type(video.created_at) is int and type(video.progress) is int
    assert isinstance(video.seconds, str) and isinstance(video.size, str)
    assert video.status in ("queued", "in_progress", "completed", "failed")
    for name in ("completed_at", "expires_at"):
        value = getattr(video, name)
        assert value is None or type(value) is int, name
    assert video.error is None or (isinstance(video.error.code, str) and isinstance(video.error.message, str))


async def test_the_openai_sdk_creates_polls_lists_downloads_and_deletes_on_the_sandbox(
    sandbox: SandboxServer, openai_client: openai.OpenAI
) -> None:
    """A multipart create with a file part as the first frame, retrieve to completion, list pages, both downloads,
    delete; every answer parses into the SDK's types."""
    videos = openai_client.videos
    video = await in_thread(
        videos.create,
        prompt=PROMPT,
        model=model_id("1.5-pro"),
        seconds="8",
        size="720x1280",
        input_reference=("first.png", PNG, "image/png"),
    )
    assert_video_types(video)
    assert (video.status, video.seconds, video.size, video.prompt) == ("queued", "8", "720x1280", PROMPT)
    task = sandbox.state.tasks[video.id]
    assert task.body["content"][1] == image(PNG_DATA_URL, "first_frame")  # the file part is the first frame
    assert (task.resolution, task.ratio, task.duration) == ("720p", "9:16", 8)

    with anyio.fail_after(10):
        while video.status != "completed":
            await anyio.sleep(0.05)
            video = await in_thread(videos.retrieve, video.id)
            assert_video_types(video)
    assert video.progress == 100 and video.completed_at is not None and video.expires_at is not None
    snapshot = OpenAIVideosDialect().parse_task(video.model_dump(), video.id)
    assert (snapshot.status, snapshot.resolution, snapshot.ratio, snapshot.duration) == (
        "succeeded",
        "720p",
        "9:16",
        8.0,
    )

    others = [await in_thread(videos.create, prompt=f"more {i}", model=model_id("1.0-pro")) for i in range(2)]
    first_page = await in_thread(videos.list, limit=2)
    assert [v.id for v in first_page.data] == [others[1].id, others[0].id]
    assert first_page.has_more is True and first_page.last_id == others[0].id
    for listed in first_page.data:
        assert_video_types(listed)
    everything = await in_thread(lambda: [v.id for v in videos.list(limit=1)])  # the SDK follows the cursor
    assert everything == [others[1].id, others[0].id, video.id]
    ascending = await in_thread(videos.list, order="asc", limit=10)
    assert [v.id for v in ascending.data] == [video.id, others[0].id, others[1].id] and ascending.has_more is False

    content = await in_thread(videos.download_content, video.id)
    thumbnail = await in_thread(videos.download_content, video.id, variant="thumbnail")
    spritesheet = await in_thread(videos.download_content, video.id, variant="spritesheet")
    assert content.content[4:8] == b"ftyp"
    assert thumbnail.content.startswith(b"\x89PNG") and spritesheet.content.startswith(b"\x89PNG")

    deleted = await in_thread(videos.delete, video.id)
    assert isinstance(deleted, VideoDeleteResponse)
    assert (deleted.id, deleted.object, deleted.deleted) == (video.id, "video.deleted", True)
    with pytest.raises(openai.NotFoundError):
        await in_thread(videos.retrieve, video.id)


async def test_the_openai_sdk_gets_openai_errors_for_what_the_sandbox_refuses(
    sandbox: SandboxServer, openai_client: openai.OpenAI
) -> None:
    """A size the model does not make, a length out of range, deleting a render in progress: 400s the SDK raises."""
    videos = openai_client.videos
    for parameters in ({"size": "1792x1024"}, {"seconds": "20"}):
        with pytest.raises(openai.BadRequestError) as refused:
            await in_thread(videos.create, prompt=PROMPT, model=model_id("1.5-pro"), **parameters)
        assert refused.value.status_code == 400 and refused.value.message
    busy = await in_thread(videos.create, prompt="busy [[render=30]]", model=model_id("1.5-pro"))
    with pytest.raises(openai.BadRequestError):
        await in_thread(videos.delete, busy.id)
    assert (await in_thread(videos.retrieve, busy.id)).status in ("queued", "in_progress")


async def test_our_strict_openai_dialect_round_trips_through_the_sandbox(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Our JSON body (input_reference as {"image_url": data URL}) is read as the SDK's multipart one is."""
    preset = PRESETS["openai-compatible"]
    request = validate_request(
        VideoArguments(prompt=PROMPT, first_frame=PNG_DATA_URL, duration=5, ratio="1:1"), preset, preset.default_model
    )
    http_request = OpenAIVideosDialect().create_request(request, f"{sandbox.url}/v1")
    async with httpx.AsyncClient() as http:
        response = await http.post(
            http_request.url, json=http_request.json_body, headers={"Authorization": f"Bearer {SECRET_KEY}"}
        )
    assert response.status_code == 200, response.text
    video = Video.construct(**response.json())  # as the SDK reads answers (its `size` literal lists Sora's sizes)
    assert_video_types(video)
    task = sandbox.state.tasks[video.id]
    assert task.body["content"][1] == image(PNG_DATA_URL, "first_frame")
    assert (video.size, task.resolution, task.ratio, task.duration) == ("960x960", "720p", "1:1", 5)
