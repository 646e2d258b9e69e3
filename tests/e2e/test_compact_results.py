"""Results a model can afford (issue 19): the default answers stay under their size promises, carry no nulls, do
not repeat the structured content as JSON text, keep every path and link for hosts that do not load the player, and
meet the output schema each tool publishes (checked with a JSON-schema validator, closed so that a field the schema
does not declare fails too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import anyio
import pytest
from jsonschema import Draft202012Validator
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.config import Settings
from seedance_mcp.models import VideoTask
from seedance_mcp.results import task_text
from tests.conftest import make_settings, text_of
from tests.fakes.stdio_helpers import server_env, stdio_params

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]
LIST_LIMIT = 4_000
VIDEO_LIMIT = 2_500
PROMPT = (
    "Video {n}: a red fox trots through fresh snow at dawn, breath steaming, low golden light; slow dolly-in, "
    "shallow depth of field, cinematic colour grade."
)
"""A prompt of a realistic length (the one bench #10 uses)."""


def chars(result: Any) -> int:
    """A result's size as the client receives it: its blocks and structured content as compact JSON, an image
    without its base64 data (bench/result_size.py measures the same way)."""
    blocks = []
    for block in result.content:
        data = block.model_dump(by_alias=True, exclude_none=True, mode="json")
        data.pop("data", None)
        blocks.append(data)
    size = len(json.dumps(blocks, ensure_ascii=False, separators=(",", ":")))
    return size + len(json.dumps(result.structured_content, ensure_ascii=False, separators=(",", ":")))


def closed(schema: Any) -> Any:
    """The schema with `additionalProperties: false` wherever it lists properties: a result field it does not
    declare then fails validation."""
    if isinstance(schema, list):
        return [closed(item) for item in cast("list[Any]", schema)]
    if not isinstance(schema, dict):
        return schema
    node = {key: closed(value) for key, value in cast("dict[str, Any]", schema).items()}
    if "properties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    return node


def nulls(value: Any, path: str = "$") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in cast("dict[str, Any]", value).items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(cast("list[Any]", value)) for p in nulls(v, f"{path}[{i}]")]
    return []


def check(result: Any, schema: dict[str, Any], *, strict: bool = True) -> dict[str, Any]:
    """A result that is no error, meets its tool's published schema (closed when `strict`), has no null, and whose
    text is not its structured content again as JSON."""
    assert result.is_error is False, text_of(result)
    data: dict[str, Any] = result.structured_content
    errors = [e.message for e in Draft202012Validator(closed(schema) if strict else schema).iter_errors(data)]
    assert errors == [], errors
    assert nulls(data) == []
    text = text_of(result)
    assert text and not text.lstrip().startswith("{"), text
    return data


async def schemas_of(client: Client) -> dict[str, dict[str, Any]]:
    tools = (await client.list_tools()).tools
    return {tool.name: tool.output_schema or {} for tool in tools}


def test_the_published_output_schemas_are_real_and_lean(settings: Settings) -> None:
    async def run() -> dict[str, dict[str, Any]]:
        async with Client(create_app(settings)) as client:
            return await schemas_of(client)

    schemas = anyio.run(run)
    assert set(schemas) == {
        "generate_video",
        "get_task_status",
        "list_tasks",
        "cancel_task",
        "list_models",
        "storyboard",
    }
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        assert schema.get("type") == "object" and schema.get("properties") and schema.get("required"), name
        text = json.dumps(schema)
        assert '"description"' not in text and '"null"' not in text and '"default"' not in text, name
    assert schemas["get_task_status"] == schemas["generate_video"]


@pytest.mark.parametrize("mode", MODES)
async def test_every_tools_results_meet_its_schema_without_nulls_or_json_text(tmp_path: Path, mode: str) -> None:
    settings = make_settings(tmp_path, sandbox_render_seconds=0.3)
    with anyio.fail_after(60):
        async with Client(create_app(settings), mode=mode) as client:
            schemas = await schemas_of(client)
            made = await client.call_tool("generate_video", {"prompt": "a fox", "return_last_frame": True})
            dry = await client.call_tool("generate_video", {"prompt": "a fox", "dry_run": True, "model": "2.0"})
            queued = await client.call_tool("generate_video", {"prompt": "a slow fox [[queue=30]]", "wait": False})
            handle = (queued.structured_content or {})["task_id"]
            status = await client.call_tool("get_task_status", {"task_id": handle})
            cancelled = await client.call_tool("cancel_task", {"task_id": handle})
            failed = await client.call_tool("generate_video", {"prompt": "a fox [[fail=OutputVideoSensitiveContent]]"})
            listed = await client.call_tool("list_tasks", {})
            detailed = await client.call_tool("list_tasks", {"detail": True})
            models = await client.call_tool("list_models", {})
            one = await client.call_tool("list_models", {"model": "2.0"})
            every = await client.call_tool("list_models", {"model": "all"})
            unknown = await client.call_tool("list_models", {"model": "9.9"})
    video = schemas["generate_video"]
    finished = check(made, video)
    assert finished["status"] == "succeeded" and finished["last_frame_path"] and finished["video_url"]
    assert check(dry, video)["dry_run_request"]["body"]["model"]
    assert check(status, video)["status"] in ("queued", "running")
    assert check(cancelled, schemas["cancel_task"])["cancelled"] is True
    lost = check(failed, video)
    assert lost["error_code"] == "OutputVideoSensitiveContent" and lost["error_code"] in text_of(failed)
    tasks = check(listed, schemas["list_tasks"])
    assert [task["status"] for task in tasks["tasks"]] == ["failed", "cancelled", "succeeded"]
    assert set(tasks["tasks"][2]) == {"task_id", "status", "model", "prompt", "created_at", "saved"}
    # In detail each task is as get_task_status shows it: more fields than the schema's lines, the same types.
    full = check(detailed, schemas["list_tasks"], strict=False)
    assert full["tasks"][2]["video_path"] == finished["video_path"]
    lines = check(models, schemas["list_models"])
    assert {"2.0", "2.5", "2.0-mini"} <= {model["key"] for model in lines["models"]}
    assert [model["key"] for model in check(one, schemas["list_models"], strict=False)["models"]] == ["2.0"]
    assert check(every, schemas["list_models"], strict=False)["models"][0]["notes"]
    assert unknown.is_error and "Invalid argument `model`: no model '9.9' on " in text_of(unknown)


@pytest.mark.parametrize("mode", MODES)
async def test_a_finished_video_keeps_every_path_and_link_in_its_text_and_fits_its_size(
    tmp_path: Path, mode: str
) -> None:
    """Hosts that do not load the player (or show the model only the text) lose nothing: the path, both links,
    the last frame, the preview picture and the resource links are all there, within 2,500 characters."""
    settings = make_settings(tmp_path, sandbox_render_seconds=0.3)
    with anyio.fail_after(30):
        async with Client(create_app(settings), mode=mode) as client:
            made = await client.call_tool("generate_video", {"prompt": PROMPT.format(n=1)})
            again = await client.call_tool("get_task_status", {"task_id": (made.structured_content or {})["task_id"]})
    for result in (made, again):
        data = result.structured_content or {}
        text = text_of(result)
        for field in ("video_path", "video_url", "video_url_expires_at", "last_frame_url", "task_id"):
            assert data[field] in text, field
        kinds = [block.type for block in result.content]
        assert kinds.count("image") == 1 and kinds.count("resource_link") == 2, kinds
        assert chars(result) <= VIDEO_LIMIT, chars(result)


@pytest.mark.parametrize("mode", MODES)
async def test_list_tasks_with_twenty_jobs_fits_its_size(tmp_path: Path, mode: str) -> None:
    settings = make_settings(tmp_path, sandbox_render_seconds=0.1)
    with anyio.fail_after(60):
        async with Client(create_app(settings), mode=mode) as client:
            for n in range(20):
                await client.call_tool("generate_video", {"prompt": PROMPT.format(n=n + 1), "wait": False})
            while True:
                listed = await client.call_tool("list_tasks", {})
                if all(task.get("saved") for task in (listed.structured_content or {})["tasks"]):
                    break
                await anyio.sleep(0.1)
    data = listed.structured_content or {}
    assert len(data["tasks"]) == 20 and data["more"] is False
    assert "20 tasks, newest first: 20 succeeded." in text_of(listed)
    assert chars(listed) <= LIST_LIMIT, chars(listed)


@pytest.mark.parametrize("preset", sorted(PRESETS))
async def test_list_models_fits_its_size_on_every_provider(tmp_path: Path, preset: str) -> None:
    settings = make_settings(tmp_path, provider=preset, api_key=None)
    async with Client(create_app(settings)) as client:
        listed = await client.call_tool("list_models", {})
    assert listed.is_error is False, text_of(listed)
    assert chars(listed) <= LIST_LIMIT, (preset, chars(listed))
    assert nulls(listed.structured_content) == []


@pytest.mark.subprocess
async def test_over_stdio_the_results_meet_their_schemas_and_sizes(tmp_path: Path) -> None:
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox", SEEDANCE_SANDBOX_RENDER_SECONDS="0.3")
    with anyio.fail_after(60):
        async with Client(stdio_params(env), mode="legacy") as client:
            schemas = await schemas_of(client)
            made = await client.call_tool("generate_video", {"prompt": PROMPT.format(n=1)})
            listed = await client.call_tool("list_tasks", {})
            models = await client.call_tool("list_models", {})
    assert check(made, schemas["generate_video"])["status"] == "succeeded"
    assert chars(made) <= VIDEO_LIMIT
    assert check(listed, schemas["list_tasks"])["tasks"][0]["saved"] is True
    check(models, schemas["list_models"])
    assert chars(models) <= LIST_LIMIT


def test_a_failures_text_keeps_the_providers_code_message_and_request_id() -> None:
    failed = VideoTask(
        task_id="cgt-1",
        job_id="job-1",
        provider="ark",
        model="m",
        status="failed",
        error_code="InputTextSensitiveContent",
        error_message="may contain sensitive information",
        request_id="20261207abcdef",
        next_step="The task failed (InputTextSensitiveContent): may contain sensitive information.",
    )
    text = task_text(failed)
    assert "Provider request id: 20261207abcdef" in text
    assert text.count("InputTextSensitiveContent") == 1 and text.count("may contain sensitive information") == 1
