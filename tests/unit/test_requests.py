"""generate_video's arguments are declared once (requests.py): the published schema, the checks and the request
all come from that one declaration."""

from __future__ import annotations

import json
from importlib.resources import files
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.config import Settings
from seedance_mcp.requests import CallOptions, VideoArguments
from seedance_mcp.validation import validate_request
from seedance_mcp.wire import VideoRequest

pytestmark = pytest.mark.anyio


async def published_properties(settings: Settings) -> dict[str, Any]:
    with anyio.fail_after(20):
        async with Client(create_app(settings)) as client:
            tools = (await client.list_tools()).tools
    schema = next(tool for tool in tools if tool.name == "generate_video").input_schema
    assert schema["required"] == ["prompt"]
    return schema["properties"]


async def test_the_published_arguments_are_the_declared_fields(settings: Settings) -> None:
    """Every field of VideoArguments and CallOptions, and nothing else, is an argument of the tool, with the
    field's own description; the old `approve_cost` is accepted but not published."""
    properties = await published_properties(settings)
    declared = {**VideoArguments.model_fields, **CallOptions.model_fields}
    assert list(properties) == [name for name in declared if name != "approve_cost"]
    for name, schema in properties.items():
        assert schema.get("description") == declared[name].description, name


def test_the_request_is_built_on_the_arguments() -> None:
    """VideoRequest is the arguments plus what validation works out: no argument can be missing from it."""
    assert issubclass(VideoRequest, VideoArguments)
    for name, field in VideoArguments.model_fields.items():
        assert VideoRequest.model_fields[name].annotation == field.annotation, name


def test_validation_carries_every_argument_it_does_not_settle_into_the_request() -> None:
    """What the checks leave as given reaches the request as given (compared field by field, for all of them)."""
    given = VideoArguments(
        prompt="a lighthouse at dusk",
        model="2.0",
        reference_images=("https://e.com/a.png",),
        reference_videos=("https://e.com/v.mp4",),
        reference_audios=("https://e.com/a.mp3",),
        resolution="720p",
        ratio="16:9",
        duration=8,
        seed=42,
        watermark=True,
        generate_audio=False,
        return_last_frame=True,
        service_tier="default",
        execution_expires_after=7200,
        priority=3,
    )
    request = validate_request(given, PRESETS["ark"], "2.0")
    for name in VideoArguments.model_fields:
        assert getattr(request, name) == getattr(given, name), name


def test_the_catalog_names_every_argument_a_gateway_may_not_carry() -> None:
    """A preset's `limits.unsupported` names arguments; the catalog's schema lists which (and the server's own
    `safety_identifier`): every declared argument but the prompt and the model, so a new one is named there too."""
    schema = json.loads(files("seedance_mcp").joinpath("data/catalog.schema.json").read_text(encoding="utf-8"))
    named = schema["$defs"]["argument"]["enum"]
    assert set(named) == set(VideoArguments.model_fields) - {"prompt", "model"} | {"safety_identifier"}
