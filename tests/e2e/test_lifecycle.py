"""Defaults that are sold today and priced, and models that retire (issue 16, items 1 and 2): every preset's default
call is accepted and priced; a retired model is refused before sending, naming its replacement; list_models shows
lifecycles with their sources; a provider's "not found / not open" answer for a catalog model says what is known."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESET_NAMES, Lifecycle, builtin_catalog
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.pricing import quote
from seedance_mcp.requests import VideoArguments
from seedance_mcp.sandbox import SandboxState, running_sandbox
from seedance_mcp.validation import validate_request
from tests.conftest import SECRET_KEY, make_settings, sandbox_stats, text_of

pytestmark = pytest.mark.anyio

REPLACEMENT = "dreamina-seedance-2-0-mini-260615"


def preset_regions() -> list[tuple[str, str]]:
    """Every preset in every region it may be pointed at (an official one in each region of its cloud)."""
    catalog = builtin_catalog()
    pairs: list[tuple[str, str]] = []
    for name, preset in catalog.presets.items():
        regions = catalog.regions_of(catalog.regions[preset.region].cloud) if preset.official else (preset.region,)
        pairs += [(name, region) for region in regions]
    return pairs


@pytest.mark.parametrize(("preset_name", "region"), preset_regions())
def test_every_presets_default_is_sold_there_on_the_catalogs_date_and_has_a_price(
    preset_name: str, region: Any
) -> None:
    catalog = builtin_catalog()
    preset = catalog.preset(preset_name, region)
    spec = preset.model(preset.default_model)
    assert spec.status_on(catalog.date) == "on_sale", (preset_name, region, spec.lifecycle)
    price = quote(
        spec,
        preset.currency,
        resolution=spec.default_resolution,
        with_video_input=False,
        generate_audio=None,
        flex=False,
    )
    assert price is not None and price[0] > 0, (preset_name, region)


@pytest.mark.parametrize("preset_name", [*(name for name in PRESET_NAMES if name != "sandbox"), "sandbox"])
async def test_a_default_call_on_every_preset_is_accepted_and_priced_within_a_daily_budget(
    tmp_path: Path, preset_name: str
) -> None:
    """README's person with `daily_budget: 20` makes a video with no model named, on every preset (the sandbox
    speaking each one's dialect and rules): the call is accepted, and the result carries its cost."""
    sandbox_as = None if preset_name == "sandbox" else preset_name
    settings = make_settings(tmp_path, sandbox_as=sandbox_as, daily_budget=20, sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": f"a paper boat on {preset_name}", "duration": 5})
    data = result.structured_content or {}
    assert result.is_error is False and data.get("status") == "succeeded", text_of(result)
    assert data["cost"] is not None and data["cost"] > 0 and data["currency"] in ("CNY", "USD")


async def test_a_byteplus_user_naming_1_5_pro_is_told_what_to_use_instead(tmp_path: Path) -> None:
    """By key, by id or through a declared endpoint: refused before sending, with the date, the source and the
    named replacement; nothing reaches the provider."""
    async with running_sandbox(SandboxState(region="byteplus")) as sandbox:
        settings = make_settings(
            tmp_path,
            provider="byteplus",
            base_url=f"{sandbox.url}/api/v3",
            api_key=SECRET_KEY,
            model_map="ep-20251103-abcde=1.5-pro",
        )
        async with Client(create_app(settings)) as client:
            answers = [
                await client.call_tool("generate_video", {"prompt": "x", "model": name})
                for name in ("1.5-pro", "seedance-1-5-pro-251215", "ep-20251103-abcde")
            ]
        stats = await sandbox_stats(sandbox)
    for answer in answers:
        message = text_of(answer)
        assert answer.is_error is True and "`model`" in message and "retired" in message, message
        assert (
            "2026-11-11" in message and "BP-SA" in message and REPLACEMENT in message and 'model="2.0-mini"' in message
        )
        assert "Nothing was sent" in message
    assert stats["create_attempts"] == 0


async def test_list_models_shows_each_lifecycle_with_its_source_and_the_description_leaves_retired_models_out(
    tmp_path: Path,
) -> None:
    async with Client(create_app(make_settings(tmp_path / "bp", provider="byteplus", api_key=None))) as client:
        byteplus = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    async with Client(create_app(make_settings(tmp_path / "cn", provider="ark", api_key=None))) as client:
        ark = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
        ark_tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    pro = next(m for m in byteplus["models"] if m["key"] == "1.5-pro")
    assert pro["lifecycle"]["status"] == "retired" and pro["lifecycle"]["date"] == "2026-11-11"
    assert pro["lifecycle"]["replacement"] == REPLACEMENT and pro["lifecycle"]["source"] == "BP-SA (2026-11-13)"
    assert all("lifecycle" not in m for m in byteplus["models"] if m["key"] in ("2.5", "2.0-mini", "2.0-fast"))
    assert byteplus["catalog_date"] == builtin_catalog().date
    cn_pro = next(m for m in ark["models"] if m["key"] == "1.5-pro")
    assert cn_pro["lifecycle"]["status"] == "retiring" and "replacement" not in cn_pro["lifecycle"]
    assert "1.5-pro" not in (tools["generate_video"].description or "")
    assert "1.5-pro" in (ark_tools["generate_video"].description or "")


async def test_a_retiring_model_is_sent_and_its_result_says_so(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, sandbox_render_seconds=0.2)
    async with Client(create_app(settings)) as client:
        result = await client.call_tool("generate_video", {"prompt": "x", "model": "1.5-pro", "duration": 5})
    assert (result.structured_content or {}).get("status") == "succeeded", text_of(result)
    assert "Note: doubao-seedance-1-5-pro-251215 is retiring on" in text_of(result)


@pytest.mark.parametrize(
    ("region", "provider", "model", "words"),
    [
        ("cn", "ark", "1.5-pro", ["What the catalog knows", "is retiring", "RESALE-2026-11"]),
        ("byteplus", "byteplus", "2.5-flash", ["needs private-model access and activation"]),
        ("byteplus", "byteplus", "2.0", ["activated in the console of the key's region"]),
    ],
)
async def test_a_providers_not_open_answer_for_a_catalog_model_says_what_the_catalog_knows(
    tmp_path: Path, region: Any, provider: str, model: str, words: list[str]
) -> None:
    """The provider answers 404 ModelNotOpen (the account has not activated it): the error keeps the provider's
    code and request id, and adds the lifecycle, or the activation the model needs."""
    state = SandboxState(region=region, inactive_models={model})
    async with running_sandbox(state) as sandbox:
        settings = make_settings(tmp_path, provider=provider, base_url=f"{sandbox.url}/api/v3", api_key=SECRET_KEY)
        async with Client(create_app(settings)) as client:
            result = await client.call_tool("generate_video", {"prompt": "x", "model": model, "duration": 5})
    message = text_of(result)
    assert result.is_error is True and "ModelNotOpen" in message and "Request ID" in message, message
    assert all(word in message for word in words), message


def test_a_retirement_day_that_comes_turns_retiring_into_retired() -> None:
    """A lifecycle records the day: before it the model is retiring (sent, with a note); from it, refused."""
    lifecycle = Lifecycle("retiring", date="2027-03-01", replacement="2.5", source="me (2026-12-07)")
    assert lifecycle.status_on("2027-02-28") == "retiring" and lifecycle.status_on("2027-03-01") == "retired"
    assert Lifecycle("retired", date="2027-03-01").status_on("2027-02-28") == "retiring"  # announced, not yet
    assert Lifecycle("retired").status_on("2000-01-01") == "retired"


def test_a_users_file_can_announce_a_retirement_that_validation_then_enforces(tmp_path: Path) -> None:
    catalog_file = tmp_path / "catalog.toml"
    catalog_file.write_text(
        '[sources.notice]\nwhat = "A deprecation notice"\ndate = "2026-12-07"\n\n'
        '[models."2.0".regions.cn]\nsource = "notice"\nstatus = "retiring"\ndate = "2027-03-01"\nreplacement = "2.5"\n'
    )
    settings = make_settings(tmp_path, provider="ark", catalog_file=catalog_file)
    args = VideoArguments(prompt="x", model="2.0")
    assert validate_request(args, settings.preset, settings.default_model, today="2027-02-28").model_key == "2.0"
    with pytest.raises(InvalidArgument) as refused:
        validate_request(args, settings.preset, settings.default_model, today="2027-03-01")
    assert refused.value.argument == "model" and "doubao-seedance-2-5-260628" in str(refused.value)
