"""A dialect's request body on the wire: what a gateway receives over real HTTP on 127.0.0.1 (tests/fakes/tiny_http.py)
when the provider client sends what the pure builders of tests/unit/test_payloads.py make."""

from __future__ import annotations

from pathlib import Path

import pytest

from seedance_mcp.catalog import PRESETS
from seedance_mcp.providers.dialects.openai_videos import OpenAIVideosDialect
from seedance_mcp.requests import VideoArguments
from seedance_mcp.validation import validate_request


@pytest.mark.anyio
async def test_a_local_first_frame_reaches_an_openai_style_gateway_as_a_file_part(tmp_path: Path) -> None:
    """As the official `openai` SDK sends it: multipart/form-data, the image as the `input_reference` file."""
    import base64

    import httpx

    from seedance_mcp.providers.client import ProviderClient
    from tests.conftest import png_bytes
    from tests.fakes.tiny_http import answer, serving

    image = png_bytes(720, 1280)
    p = PRESETS["openai-compatible"]
    args = VideoArguments(
        prompt="a kite", first_frame=f"data:image/png;base64,{base64.b64encode(image).decode()}",
        resolution="720p", ratio="9:16", duration=5,
    )  # fmt: skip
    request = validate_request(args, p, p.default_model)
    created_answer = answer(200, {"id": "video_1", "object": "video", "status": "queued"})
    async with serving(lambda seen: created_answer) as server, httpx.AsyncClient() as http:
        client = ProviderClient(
            preset=p, dialect=OpenAIVideosDialect(), base_url=server.url, api_key="k-0123456789", http=http
        )
        created = await client.submit(client.create_request(request))
    [seen] = server.seen
    assert created == "video_1" and seen.headers["content-type"].startswith("multipart/form-data")
    assert image in seen.body and b'name="input_reference"; filename="input_reference.png"' in seen.body
    assert b'name="size"\r\n\r\n720x1280' in seen.body and b'name="seconds"\r\n\r\n5' in seen.body
