"""Regions (item 6), the asset library (item 7) and the reference minimums the API enforces (item 8)."""

from __future__ import annotations

import base64
import io
import wave
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import ValidationError

from seedance_mcp.app import create_app
from seedance_mcp.catalog import builtin_catalog
from seedance_mcp.config import load_settings
from seedance_mcp.sandbox import SandboxState, running_sandbox
from tests.conftest import SECRET_KEY, make_settings, png_bytes, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

EU_BASE = "https://ark.eu-west.bytepluses.com/api/v3"


# -- item 6: regions -----------------------------------------------------------------------------------------------


async def test_byteplus_in_eu_west_1_has_its_base_url_title_models_and_prices(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, provider="byteplus", region="eu-west-1", api_key=None)
    assert settings.region == "byteplus-eu" and settings.preset.base_url == EU_BASE
    async with Client(create_app(settings)) as client:
        listed = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
        dry = (await client.call_tool("generate_video", {"prompt": "x", "dry_run": True})).structured_content or {}
    assert listed["provider_title"] == "BytePlus ModelArk (eu-west-1)"
    assert dry["dry_run_request"]["url"] == f"{EU_BASE}/contents/generations/tasks"
    assert dry["model"] == "dreamina-seedance-2-0-fast-260128" and dry["currency"] == "USD"
    models = {m["key"]: m for m in listed["models"]}
    assert "4k" in models["2.5"]["resolutions"] and models["1.5-pro"]["lifecycle"]["status"] == "retired"
    # SEEDANCE_BASE_URL still wins (the region's address is configurable).
    moved = make_settings(tmp_path, provider="byteplus", region="byteplus-eu", base_url="https://eu.example/api/v3")
    async with Client(create_app(moved)) as client:
        dry = (await client.call_tool("generate_video", {"prompt": "x", "dry_run": True})).structured_content or {}
    assert dry["dry_run_request"]["url"] == "https://eu.example/api/v3/contents/generations/tasks"


def test_the_catalog_records_per_region_which_models_and_fields_are_offered() -> None:
    catalog = builtin_catalog()
    v25 = {region: catalog.in_region("2.5", region) for region in ("cn", "byteplus", "byteplus-eu")}
    assert [spec.resolutions[-1] if spec else None for spec in v25.values()] == ["1080p", "4k", "4k"]
    assert catalog.in_region("2.5-flash", "cn") is None and catalog.in_region("2.5-flash", "byteplus-eu") is not None
    web = [catalog.in_region("2.0", region) for region in ("cn", "byteplus")]
    assert [spec.web_search if spec else None for spec in web] == [True, False]
    assert catalog.regions["byteplus-eu"].name == "eu-west-1" and catalog.regions["byteplus-eu"].currency == "USD"


@pytest.mark.parametrize(
    ("environment", "words"),
    [
        ({"SEEDANCE_PROVIDER": "byteplus", "SEEDANCE_REGION": "us-east-1"}, ["ap-southeast-1, eu-west-1"]),
        ({"SEEDANCE_PROVIDER": "ark", "SEEDANCE_REGION": "eu-west-1"}, ["cn-beijing"]),
        (
            {"SEEDANCE_PROVIDER": "kkiai", "SEEDANCE_REGION": "eu-west-1"},
            ["applies to Ark itself", "SEEDANCE_BASE_URL"],
        ),
    ],
)
def test_a_region_the_provider_has_not_is_refused_at_start_up(environment: dict[str, str], words: list[str]) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings(environment)
    assert "SEEDANCE_REGION" in str(refused.value) and all(word in str(refused.value) for word in words)


async def test_the_sandbox_plays_eu_west_1_for_a_default_priced_call(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_as="byteplus", region="eu-west-1", daily_budget=5)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "a harbour in Dublin", "duration": 5})
    data = result.structured_content or {}
    assert data.get("status") == "succeeded" and data["currency"] == "USD" and data["cost"], text_of(result)


# -- item 7: the asset library -------------------------------------------------------------------------------------

ASSETS: dict[str, Any] = {
    "first_frame": "asset://asset-20261201-first",
    "last_frame": "asset://asset-20261201-last",
}
REFERENCES: dict[str, Any] = {
    "reference_images": ["asset://asset-20261201-face"],
    "reference_videos": ["asset://asset-20261201-walk"],
    "reference_audios": ["asset://asset-20261201-voice"],
}


@pytest.mark.parametrize("provider", ["ark", "byteplus", "sandbox"])
async def test_asset_ids_pass_untouched_in_every_media_field_on_ark(tmp_path: Path, provider: str) -> None:
    """Frames (2.0) and references of every kind (2.5): the ids reach the body as given; nothing is read locally
    (no allowed directory exists)."""
    settings = make_settings(tmp_path, provider=provider, api_key=None, allowed_dirs=(tmp_path / "none",))
    async with Client(create_app(settings)) as client:
        frames = await client.call_tool("generate_video", {"prompt": "x", "model": "2.0", "dry_run": True, **ASSETS})
        references = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "2.5", "dry_run": True, **REFERENCES}
        )
    urls: list[str] = []
    for result in (frames, references):
        assert result.is_error is False, text_of(result)
        content = (result.structured_content or {})["dry_run_request"]["body"]["content"]
        urls += [item[item["type"]]["url"] for item in content[1:]]
    assert urls == [*ASSETS.values(), *(value[0] for value in REFERENCES.values())]


@pytest.mark.parametrize("provider", ["kkiai", "gptge", "yescale", "openai-compatible", "new-api", "aiid"])
async def test_asset_ids_are_refused_where_the_gateway_cannot_reach_the_library(tmp_path: Path, provider: str) -> None:
    settings = make_settings(tmp_path, provider=provider, base_url="https://gw.example", api_key=None)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x", "first_frame": ASSETS["first_frame"]})
    message = text_of(result)
    assert result.is_error is True and "`first_frame`" in message and "asset library" in message, message


async def test_a_2_5_video_from_asset_references_is_made_end_to_end_and_a_malformed_id_is_refused(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        made = await client.call_tool("generate_video", {"prompt": "my verified face", "model": "2.5", **REFERENCES})
        malformed = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "2.5", "reference_images": ["asset://my face"]}
        )
    assert (made.structured_content or {}).get("status") == "succeeded", text_of(made)
    assert malformed.is_error is True and "`reference_images[0]`" in text_of(malformed)


# -- item 8: reference minimums ------------------------------------------------------------------------------------


def wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(rate)
        file.writeframes(b"\x00\x01" * int(seconds * rate))
    return buffer.getvalue()


async def test_local_reference_media_under_the_minimums_are_refused_before_anything_is_paid(tmp_path: Path) -> None:
    """Audio under 1.8 s, an image side under 300 px or a ratio beyond 0.4-2.5: refused naming the argument and the
    limit; the provider never hears of it. A 2 s audio and a 300 px image pass."""
    (tmp_path / "short.wav").write_bytes(wav(1.0))
    (tmp_path / "long.wav").write_bytes(wav(2.0))
    (tmp_path / "noise.wav").write_bytes(b"RIFF" + bytes(200))
    (tmp_path / "narrow.png").write_bytes(png_bytes(299, 600))
    (tmp_path / "wide.png").write_bytes(png_bytes(1000, 300))
    (tmp_path / "ok.png").write_bytes(png_bytes(300, 300))
    async with running_sandbox(SandboxState()) as sandbox:
        settings = make_settings(tmp_path, provider="ark", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
        async with Client(create_app(settings)) as client:

            async def call(**media: Any) -> Any:
                return await client.call_tool("generate_video", {"prompt": "x", "model": "2.5", **media})

            short = await call(
                reference_images=[str(tmp_path / "ok.png")], reference_audios=[str(tmp_path / "short.wav")]
            )
            noise = await call(reference_audios=[str(tmp_path / "noise.wav")])
            narrow = await call(reference_images=[str(tmp_path / "narrow.png")])
            wide = await call(reference_images=[str(tmp_path / "wide.png")])
            inline_short = await call(reference_audios=["data:audio/wav;base64," + base64.b64encode(wav(1.0)).decode()])
            attempts = (await sandbox_stats(sandbox))["create_attempts"]
            fine = await client.call_tool(
                "generate_video",
                {
                    "prompt": "x",
                    "model": "2.5",
                    "dry_run": True,
                    "reference_images": [str(tmp_path / "ok.png")],
                    "reference_audios": [str(tmp_path / "long.wav")],
                },
            )
    assert attempts == 0
    for result, argument, words in (
        (short, "reference_audios[0]", ["plays for 1.00 s", "1.8 s"]),
        (inline_short, "reference_audios[0]", ["plays for 1.00 s"]),
        (noise, "reference_audios[0]", ["cannot be read"]),
        (narrow, "reference_images[0]", ["299×600 px", "300-6000"]),
        (wide, "reference_images[0]", ["3.33", "0.4 and 2.5"]),
    ):
        message = text_of(result)
        assert result.is_error is True and f"`{argument}`" in message, message
        assert all(word in message for word in words) and "Nothing was sent" in message, message
    assert fine.is_error is False, text_of(fine)
    content = (fine.structured_content or {})["dry_run_request"]["body"]["content"]
    assert content[2]["audio_url"]["url"].startswith("data:audio/wav;base64,")
