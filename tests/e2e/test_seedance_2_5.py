"""Today's 2.5 (issue 16, items 3-5): 2.5 Flash on BytePlus, 4k on standard 2.5 through the whole path, and 2.5
drafts rendered for real at 1080p."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.providers import dialect_for
from seedance_mcp.requests import VideoArguments
from seedance_mcp.sandbox import SandboxState, running_sandbox
from seedance_mcp.validation import validate_request
from tests.conftest import SECRET_KEY, make_settings, text_of

pytestmark = pytest.mark.anyio

FLASH = "dreamina-seedance-2-5-flash-261115"
V25_BYTEPLUS, V25_CN = "dreamina-seedance-2-5-260628", "doubao-seedance-2-5-260628"
IMG = "https://e.com/ref.png"
TOKENS_4K_5S = round(3840 * 2160 * (24 * 5 + 1) / 1024)
TOKENS_1080P_5S = round(1920 * 1080 * (24 * 5 + 1) / 1024)


def check(preset: str, **arguments: Any) -> Any:
    chosen = PRESETS[preset]
    return validate_request(VideoArguments(prompt="a kite", **arguments), chosen, chosen.default_model)


def refused(preset: str, **arguments: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as error:
        check(preset, **arguments)
    return error.value


def body_of(preset: str, **arguments: Any) -> dict[str, Any]:
    request = check(preset, **arguments)
    body = dialect_for(PRESETS[preset].dialect).create_request(request, "https://gw.example").json_body
    assert body is not None
    return body


async def listed(tmp_path: Path, provider: str) -> dict[str, dict[str, Any]]:
    async with Client(create_app(make_settings(tmp_path, provider=provider, api_key=None))) as client:
        models = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
    return {m["key"]: m for m in models["models"]}


# -- item 3: 2.5 Flash ---------------------------------------------------------------------------------------------


async def test_2_5_flash_is_listed_on_byteplus_with_its_limits_and_not_on_volcengine(tmp_path: Path) -> None:
    byteplus = await listed(tmp_path / "bp", "byteplus")
    flash = byteplus["2.5-flash"]
    assert flash["model_id"] == FLASH and flash["resolutions"] == ["480p", "720p"]
    assert flash["duration_seconds"] == "4-30 or -1 (auto)" and flash["draft"] is False
    assert (flash["max_reference_images"], flash["max_reference_videos"], flash["max_reference_audios"]) == (30, 10, 10)
    assert "output_format: mp4" in flash["options"] and any("activation" in note for note in flash["notes"])
    assert "2.5-flash" not in await listed(tmp_path / "cn", "ark")
    assert refused("ark", model="2.5-flash").argument == "model"


def test_2_5_flash_refuses_what_it_lacks_and_takes_what_it_has() -> None:
    assert check("byteplus", model="2.5-flash", duration=30, reference_images=[IMG] * 30).model_id == FLASH
    for arguments, argument, allowed in (
        ({"resolution": "1080p"}, "resolution", "480p, 720p"),
        ({"duration": 31}, "duration", "4-30 s or -1 (the model chooses)"),
        ({"reference_images": [IMG] * 31}, "reference_images", "0-30 items"),
        ({"output_format": "mov"}, "output_format", "mp4"),
    ):
        error = refused("byteplus", model="2.5-flash", **arguments)
        assert (error.argument, error.allowed) == (argument, allowed), error
    draft = refused("byteplus", model="2.5-flash", draft=True)
    assert draft.argument == "draft" and V25_BYTEPLUS in str(draft)  # the model that drafts, named


# -- item 4: 4k ----------------------------------------------------------------------------------------------------


def test_4k_on_2_5_is_sent_on_byteplus_with_its_size_and_tokens_and_refused_where_not_sold() -> None:
    request = check("byteplus", model="2.5", resolution="4k", ratio="16:9")
    assert (request.output_size, request.estimated_tokens) == ((3840, 2160), TOKENS_4K_5S)
    assert body_of("byteplus", model="2.5", resolution="4k")["resolution"] == "4k"
    cn = refused("ark", model="2.5", resolution="4k")
    assert cn.argument == "resolution" and cn.allowed == "480p, 720p, 1080p"
    other = refused("byteplus", model="2.0", resolution="4k")
    assert other.hint is not None and V25_BYTEPLUS in other.hint  # which model renders 4k here


async def test_4k_is_priced_honestly_as_unknown_and_a_budget_refuses_it(tmp_path: Path) -> None:
    """No figure is published: list_models says so, the dry run carries no cost, and a budget cannot be checked."""
    v25 = (await listed(tmp_path / "list", "byteplus"))["2.5"]
    assert "4k" in v25["resolutions"] and "1080p/4k: price unknown" in (v25["price"] or "")
    async with running_sandbox(SandboxState(region="byteplus")) as sandbox:
        settings = make_settings(
            tmp_path, provider="byteplus", base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY, daily_budget=20
        )
        async with Client(create_app(settings)) as client:
            arguments = {"prompt": "x", "model": "2.5", "resolution": "4k"}
            dry = await client.call_tool("generate_video", {**arguments, "dry_run": True})
            paid = await client.call_tool("generate_video", arguments)
        attempts = sandbox.state.create_attempts
    data = dry.structured_content or {}
    assert data["estimated_tokens"] == TOKENS_4K_5S and data.get("estimated_cost") is None
    assert paid.is_error is True and "No price is known" in text_of(paid) and attempts == 0


async def test_a_4k_video_is_made_end_to_end_on_the_sandbox_playing_byteplus(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_as="byteplus", sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "a 4k kite", "model": "2.5", "resolution": "4k"})
    data = result.structured_content or {}
    assert data.get("status") == "succeeded", text_of(result)
    assert data["resolution"] == "4k" and data["usage_tokens"] == TOKENS_4K_5S and data["model"] == V25_BYTEPLUS


async def test_the_tool_schema_offers_4k() -> None:
    async with Client(create_app(make_settings(Path("/nonexistent")))) as client:
        tool = next(t for t in (await client.list_tools()).tools if t.name == "generate_video")
    assert "4k" in str(tool.input_schema["properties"]["resolution"])


# -- item 5: 2.5 draft → final -------------------------------------------------------------------------------------


def test_a_2_5_draft_is_480p_and_its_final_is_the_draft_task_alone_at_1080p() -> None:
    draft = body_of("ark", model="2.5", draft=True)
    assert draft == {
        "model": V25_CN,
        "content": [{"type": "text", "text": "a kite"}],
        "duration": 5,
        "draft": True,
        "resolution": "480p",
    }
    final_request = check("ark", model="2.5", draft_task_id="cgt-20261207000000-abcde")
    assert final_request.effective_resolution == "1080p" and final_request.estimated_tokens == TOKENS_1080P_5S
    final = body_of("ark", model="2.5", draft_task_id="cgt-20261207000000-abcde")
    assert final == {
        "model": V25_CN,
        "content": [{"type": "draft_task", "draft_task": {"id": "cgt-20261207000000-abcde"}}],
        "return_last_frame": True,
    }  # "omitted → 1080p"; no duration: the final keeps the draft's
    assert body_of("ark", model="2.5", draft_task_id="cgt-1", resolution="1080p")["resolution"] == "1080p"
    too_low = refused("ark", model="2.5", draft_task_id="cgt-1", resolution="720p")
    assert too_low.argument == "resolution" and too_low.allowed == "1080p (or leave it out)"
    kept = refused("ark", model="2.5", draft_task_id="cgt-1", duration=8)
    assert kept.argument == "duration"
    assert check("ark", model="1.5-pro", draft=True).resolution == "480p"  # 1.5 pro drafts keep working in CN


async def test_a_2_5_draft_and_its_final_are_made_end_to_end(tmp_path: Path) -> None:
    """The draft (480p), then the final from its id alone: the sandbox renders the draft's picture at 1080p."""
    settings = make_settings(tmp_path, sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        draft = await client.call_tool(
            "generate_video", {"prompt": "a kite draft", "model": "2.5", "draft": True, "ratio": "9:16", "seed": 5}
        )
        drafted = draft.structured_content or {}
        assert drafted.get("status") == "succeeded", text_of(draft)
        final = await client.call_tool(
            "generate_video", {"prompt": "final", "model": "2.5", "draft_task_id": drafted["task_id"]}
        )
    done = final.structured_content or {}
    assert done.get("status") == "succeeded", text_of(final)
    assert drafted["resolution"] == "480p" and done["resolution"] == "1080p"
    assert (done["ratio"], done["seed"]) == ("9:16", 5)


async def test_the_sandbox_refuses_a_2_5_final_below_1080p_and_a_draft_task_with_company() -> None:
    """As the provider: a draft is rendered for real at 1080p only, and its draft_task item goes alone."""
    async with (
        running_sandbox(SandboxState(render_seconds=0.1)) as sandbox,
        httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as http,
    ):
        url = f"{sandbox.url}/api/v3/contents/generations/tasks"
        text = [{"type": "text", "text": "x"}]
        made = await http.post(url, json={"model": V25_CN, "content": text, "draft": True, "resolution": "480p"})
        assert made.status_code == 200, made.text
        draft_id = made.json()["id"]
        with anyio.fail_after(10):
            while sandbox.state.tasks[draft_id].status(sandbox.state.clock()) != "succeeded":
                await anyio.sleep(0.05)
        item = [{"type": "draft_task", "draft_task": {"id": draft_id}}]
        low = await http.post(url, json={"model": V25_CN, "content": item, "resolution": "720p"})
        company = await http.post(url, json={"model": V25_CN, "content": [*text, *item]})
        alone = await http.post(url, json={"model": V25_CN, "content": item})
    assert low.status_code == 400 and low.json()["error"]["param"] == "resolution"
    assert company.status_code == 400 and "only content item" in company.json()["error"]["message"]
    assert alone.status_code == 200 and sandbox.state.tasks[alone.json()["id"]].resolution == "1080p"
