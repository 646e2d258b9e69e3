"""A new generate_video argument, declared once (requests.py), through the real tool to the request the dialect
builds. The declaration's own checks: tests/unit/test_requests.py."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio
import pytest
from mcp import Client
from pydantic import Field

from seedance_mcp import requests, validation
from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from seedance_mcp.providers.dialects.ark import ArkDialect
from seedance_mcp.requests import VideoArguments
from seedance_mcp.tools import generate
from seedance_mcp.wire import HttpRequest, VideoRequest
from tests.unit.test_requests import published_properties

pytestmark = pytest.mark.anyio


class WithMood(VideoArguments):
    """generate_video with one more argument, as a developer would add it: one field."""

    mood: Annotated[Literal["calm", "tense"] | None, Field(description="The mood of the scene.")] = None


class MoodRequest(VideoRequest, WithMood):
    pass


async def test_a_new_argument_is_one_field_away_from_the_provider(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared once, a throwaway argument is published with its description, checked by the tool (a value outside
    its type is refused, naming it) and carried into the request the dialect builds from."""
    monkeypatch.setattr(requests, "VideoArguments", WithMood)  # what split_arguments validates into
    monkeypatch.setattr(generate, "VideoArguments", WithMood)  # what the tool's signature is made of
    monkeypatch.setattr(validation, "VideoRequest", MoodRequest)  # the request built on it
    seen: list[VideoRequest] = []
    original = ArkDialect.create_request

    def spy(self: ArkDialect, request: VideoRequest, base_url: str) -> HttpRequest:
        seen.append(request)
        return original(self, request, base_url)

    monkeypatch.setattr(ArkDialect, "create_request", spy)

    properties = await published_properties(settings)
    assert properties["mood"]["description"] == "The mood of the scene."
    assert properties["mood"]["enum"] == ["calm", "tense", None]
    with anyio.fail_after(30):
        async with Client(create_app(settings)) as client:
            refused = await client.call_tool("generate_video", {"prompt": "a harbour", "mood": "giddy"})
            shown = await client.call_tool("generate_video", {"prompt": "a harbour", "mood": "calm", "dry_run": True})
    assert refused.is_error is True and "mood" in refused.content[0].text  # type: ignore[union-attr]
    assert shown.is_error is False
    assert len(seen) == 1 and isinstance(seen[0], MoodRequest) and seen[0].mood == "calm"
