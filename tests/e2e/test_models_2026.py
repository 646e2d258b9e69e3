"""The Seedance a user buys today: 2.5 and 2.0 mini, declared endpoints, the 2026 create fields, prices in money."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from seedance_mcp.app import create_app
from tests.conftest import make_settings, text_of

pytestmark = pytest.mark.anyio


async def call(tmp_path: Path, arguments: dict[str, Any], **settings: Any) -> tuple[bool, dict[str, Any], str]:
    async with Client(create_app(make_settings(tmp_path, **settings))) as client:
        result = await client.call_tool("generate_video", {"dry_run": True, **arguments})
    return bool(result.is_error), result.structured_content or {}, text_of(result)


def body_of(result: dict[str, Any]) -> dict[str, Any]:
    return result["dry_run_request"]["body"]


@pytest.mark.parametrize(
    ("provider", "ids"),
    [
        ("ark", ("doubao-seedance-2-5-260628", "doubao-seedance-2-0-mini-260615")),
        ("byteplus", ("dreamina-seedance-2-5-260628", "dreamina-seedance-2-0-mini-260615")),
    ],
)
async def test_list_models_shows_2_5_and_2_0_mini_with_their_limits_and_prices(
    tmp_path: Path, provider: str, ids: tuple[str, str]
) -> None:
    async with Client(create_app(make_settings(tmp_path, provider=provider))) as client:
        listed = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
    models = {m["model_id"]: m for m in listed["models"]}
    v25, mini = models[ids[0]], models[ids[1]]
    assert v25["duration_seconds"] == "4-30 or -1 (auto)" and v25["max_reference_images"] == 30
    assert v25["max_reference_videos"] == 10 and v25["max_reference_audios"] == 10
    assert "omni_reference_task_type: auto|reference|edit|extend" in v25["options"]
    assert mini["resolutions"] == ["480p", "720p"] and mini["duration_seconds"] == "4-15 or -1 (auto)"
    currency = "CNY" if provider == "ark" else "USD"
    assert currency in v25["price"] and listed["price_source"]
    assert v25["price_source"] and listed["catalog_date"] and listed["catalog"] == "built-in"
    # The reseller's sunset notice is reported, unconfirmed: lite is listed as retiring (not refused), with its source.
    lite = next(m for m in listed["models"] if "lite-t2v" in m["model_id"])
    assert lite["lifecycle"]["status"] == "retiring" and "2026-04-27" in lite["lifecycle"]["note"]
    assert lite["lifecycle"]["source"].startswith("RESALE-2026-11")


async def test_2_5_always_sends_a_length_because_its_own_default_bills_what_it_picks(tmp_path: Path) -> None:
    failed, result, _ = await call(tmp_path, {"prompt": "a kite", "model": "2.5"})
    assert not failed and body_of(result)["duration"] == 5
    failed, result, _ = await call(tmp_path, {"prompt": "a kite", "model": "2.5", "duration": -1})
    assert not failed and body_of(result)["duration"] == -1
    failed, _, text = await call(tmp_path, {"prompt": "a kite", "model": "2.5", "duration": 31})
    assert failed and "`duration`" in text and "4-30" in text


async def test_a_declared_endpoint_is_sent_as_given_under_the_rules_of_the_model_it_names(tmp_path: Path) -> None:
    declared = {"model_map": "ep-20251103-abcde=2.5"}
    failed, result, _ = await call(
        tmp_path, {"prompt": "a kite", "model": "ep-20251103-abcde", "duration": 25}, **declared
    )
    assert not failed and body_of(result)["model"] == "ep-20251103-abcde" and body_of(result)["duration"] == 25
    failed, _, text = await call(tmp_path, {"prompt": "a kite", "model": "ep-20251103-abcde", "frames": 49}, **declared)
    assert failed and "`frames`" in text
    async with Client(create_app(make_settings(tmp_path, **declared))) as client:
        listed = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
    assert next(m for m in listed["models"] if m["key"] == "2.5")["declared_ids"] == ["ep-20251103-abcde"]


async def test_an_undeclared_endpoint_is_refused_with_the_way_to_declare_it(tmp_path: Path) -> None:
    failed, _, text = await call(tmp_path, {"prompt": "a kite", "model": "ep-20990101-zzzzz"})
    assert failed and "`model`" in text and "SEEDANCE_MODEL_MAP" in text and "doubao-seedance-2-5-260628" in text


async def test_edit_and_extend_send_what_2_5_requires(tmp_path: Path) -> None:
    video = "https://example.com/clip.mp4"
    failed, result, _ = await call(
        tmp_path,
        {"prompt": "make it night", "model": "2.5", "reference_videos": [video], "omni_reference_task_type": "edit"},
    )
    body = body_of(result)
    assert not failed and body["omni_reference_task_type"] == "edit"
    assert body["ratio"] == "adaptive" and body["duration"] == -1
    failed, _, text = await call(
        tmp_path,
        {
            "prompt": "x",
            "model": "2.5",
            "reference_videos": [video],
            "omni_reference_task_type": "edit",
            "ratio": "16:9",
        },
    )
    assert failed and "`ratio`" in text
    failed, _, text = await call(
        tmp_path, {"prompt": "x", "model": "2.0", "reference_videos": [video], "omni_reference_task_type": "extend"}
    )
    assert failed and "`omni_reference_task_type`" in text and "doubao-seedance-2-5-260628" in text
    failed, result, _ = await call(
        tmp_path,
        {
            "prompt": "go on",
            "model": "2.5",
            "reference_videos": [video],
            "omni_reference_task_type": "extend",
            "duration": 8,
        },
    )
    assert not failed and body_of(result)["duration"] == 8 and body_of(result)["ratio"] == "adaptive"


async def test_2_5_first_frame_requests_use_the_adaptive_ratio(tmp_path: Path) -> None:
    image = "https://example.com/first.png"
    failed, result, _ = await call(tmp_path, {"prompt": "x", "model": "2.5", "first_frame": image})
    assert not failed and body_of(result)["ratio"] == "adaptive"
    failed, _, text = await call(tmp_path, {"prompt": "x", "model": "2.5", "first_frame": image, "ratio": "16:9"})
    assert failed and "`ratio`" in text and "adaptive" in text


async def test_2_5_takes_audio_as_its_only_reference_and_2_0_does_not(tmp_path: Path) -> None:
    audio = "https://example.com/voice.mp3"
    failed, _, _ = await call(tmp_path, {"prompt": "x", "model": "2.5", "reference_audios": [audio]})
    assert not failed
    failed, _, text = await call(tmp_path, {"prompt": "x", "model": "2.0", "reference_audios": [audio]})
    assert failed and "`reference_audios`" in text


async def test_the_2026_fields_are_sent_where_the_model_takes_them_and_refused_elsewhere(tmp_path: Path) -> None:
    failed, result, _ = await call(
        tmp_path,
        {
            "prompt": "today's weather in Paris",
            "model": "2.0",
            "web_search": True,
            "priority": 7,
            "execution_expires_after": 7200,
        },
    )
    body = body_of(result)
    assert not failed and body["tools"] == [{"type": "web_search"}]
    assert body["priority"] == 7 and body["execution_expires_after"] == 7200
    failed, result, _ = await call(tmp_path, {"prompt": "x", "model": "2.5", "output_format": "mov"})
    assert not failed and body_of(result)["output_format"] == "mov"
    for arguments, argument in (
        ({"model": "1.5-pro", "web_search": True}, "web_search"),
        ({"model": "2.0", "web_search": True, "first_frame": "https://example.com/a.png"}, "web_search"),
        ({"model": "1.5-pro", "priority": 3}, "priority"),
        ({"model": "2.0", "priority": 10}, "priority"),
        ({"model": "2.0", "execution_expires_after": 60}, "execution_expires_after"),
        ({"model": "2.0", "output_format": "mov"}, "output_format"),
    ):
        failed, _, text = await call(tmp_path, {"prompt": "x", **arguments})
        assert failed and f"`{argument}`" in text, (arguments, text)


async def test_a_gateway_that_cannot_carry_a_new_field_refuses_it(tmp_path: Path) -> None:
    failed, _, text = await call(tmp_path, {"prompt": "x", "priority": 3}, sandbox_as="gptge")
    assert failed and "`priority`" in text and "gptge" in text


async def test_a_draft_is_finalised_from_its_task_alone(tmp_path: Path) -> None:
    failed, result, _ = await call(
        tmp_path, {"prompt": "final", "model": "1.5-pro", "draft_task_id": "cgt-20260101000000-abcde"}
    )
    assert not failed
    assert body_of(result)["content"] == [{"type": "draft_task", "draft_task": {"id": "cgt-20260101000000-abcde"}}]
    failed, _, text = await call(
        tmp_path, {"prompt": "final", "model": "1.5-pro", "draft_task_id": "cgt-1", "duration": 8}
    )
    assert failed and "`duration`" in text and "draft" in text
    failed, _, text = await call(tmp_path, {"prompt": "final", "model": "2.0", "draft_task_id": "cgt-1"})
    assert failed and "`draft_task_id`" in text


async def test_dry_runs_and_results_carry_the_cost_in_money(tmp_path: Path) -> None:
    failed, result, _ = await call(
        tmp_path, {"prompt": "x", "model": "2.0", "resolution": "720p", "ratio": "16:9", "duration": 5}
    )
    assert not failed and result["estimated_tokens"] == 108900
    assert result["currency"] == "CNY" and result["estimated_cost"] == pytest.approx(108900 * 46 / 1e6)
    assert "CNY" in result["next_step"]
    failed, result, _ = await call(
        tmp_path,
        {
            "prompt": "x",
            "model": "2.0",
            "resolution": "720p",
            "ratio": "16:9",
            "duration": 5,
            "reference_videos": ["https://example.com/r.mp4"],
        },
    )
    assert result["estimated_cost"] == pytest.approx(108900 * 28 / 1e6)  # the with-video-input rate
    failed, result, _ = await call(
        tmp_path, {"prompt": "x", "model": "2.0"}, prices='{"cn": {"2.0": {"per_million": 100}}}'
    )
    assert result["estimated_cost"] == pytest.approx(result["estimated_tokens"] * 100 / 1e6)
