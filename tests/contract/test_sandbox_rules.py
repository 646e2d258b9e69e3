"""The sandbox keeps matching the providers (issue 16, item 10): 2.5's edit, drafts and 4k, a draft_task alone,
OpenAI's 404 envelope, a retired or unactivated model refused as Ark refuses it; and it serves again after an
earlier one in the same process was cancelled."""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest

from seedance_mcp.sandbox import SandboxState, running_sandbox

pytestmark = pytest.mark.anyio


async def test_a_sandbox_serves_after_an_earlier_one_in_the_process_was_cancelled() -> None:
    """The embedded sandbox ends by cancellation with its server's runtime; the next one (a second server in one
    process, as tests and hosts make) must still accept connections."""
    with anyio.CancelScope() as scope:
        async with running_sandbox(SandboxState()) as first:
            async with httpx.AsyncClient(timeout=5) as http:
                assert (await http.get(f"{first.url}/_sandbox/stats")).status_code == 200
            scope.cancel()
            await anyio.sleep_forever()
    with anyio.fail_after(10):
        async with running_sandbox(SandboxState()) as second, httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{second.url}/_sandbox/stats")).status_code == 200


V25_CN, V25_BYTEPLUS = "doubao-seedance-2-5-260628", "dreamina-seedance-2-5-260628"
TEXT = [{"type": "text", "text": "x"}]
VIDEO = {"type": "video_url", "video_url": {"url": "https://e.com/v.mp4"}, "role": "reference_video"}


async def post_creates(state: SandboxState, *bodies: dict[str, Any]) -> list[httpx.Response]:
    async with running_sandbox(state) as sandbox, httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as http:
        return [await http.post(f"{sandbox.url}/api/v3/contents/generations/tasks", json=body) for body in bodies]


async def test_a_2_5_edit_takes_only_duration_minus_1() -> None:
    edit = {"model": V25_CN, "content": [*TEXT, VIDEO], "omni_reference_task_type": "edit"}
    five, auto, left_out = await post_creates(SandboxState(), {**edit, "duration": 5}, {**edit, "duration": -1}, edit)
    assert five.status_code == 400 and five.json()["error"]["param"] == "duration", five.text
    assert auto.status_code == 200 and left_out.status_code == 200


async def test_2_5_takes_4k_where_its_region_sells_it_and_drafts_at_480p() -> None:
    """Its rules come from the catalog for the region the sandbox plays: 4k on BytePlus, not on Volcengine."""
    (byteplus_4k,) = await post_creates(
        SandboxState(region="byteplus"), {"model": V25_BYTEPLUS, "content": TEXT, "resolution": "4k"}
    )
    cn_4k, draft, draft_720 = await post_creates(
        SandboxState(),
        {"model": V25_CN, "content": TEXT, "resolution": "4k"},
        {"model": V25_CN, "content": TEXT, "draft": True, "resolution": "480p"},
        {"model": V25_CN, "content": TEXT, "draft": True, "resolution": "720p"},
    )
    assert byteplus_4k.status_code == 200 and draft.status_code == 200
    assert cn_4k.status_code == 400 and cn_4k.json()["error"]["param"] == "resolution"
    assert draft_720.status_code == 400 and draft_720.json()["error"]["param"] == "resolution"


async def test_a_retired_or_unactivated_model_is_refused_as_ark_refuses_it() -> None:
    retired, inactive = await post_creates(
        SandboxState(region="byteplus", inactive_models={"2.5-flash"}),
        {"model": "seedance-1-5-pro-251215", "content": TEXT},
        {"model": "dreamina-seedance-2-5-flash-261115", "content": TEXT},
    )
    assert (retired.status_code, retired.json()["error"]["code"]) == (404, "InvalidEndpointOrModel.NotFound")
    assert (inactive.status_code, inactive.json()["error"]["code"]) == (404, "ModelNotOpen")


@pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")  # openai 3.x marks videos deprecated
async def test_an_openai_style_404_carries_openais_error_envelope() -> None:
    """`GET /v1/videos/{unknown}`: OpenAI's `{"error": {"message", "type", "param", "code"}}`, which the `openai`
    SDK reads into NotFoundError (not Ark's envelope)."""
    import openai

    async with running_sandbox(SandboxState()) as sandbox:
        async with httpx.AsyncClient(headers={"Authorization": "Bearer k"}) as http:
            raw = await http.get(f"{sandbox.url}/v1/videos/video_nope")
        client = openai.OpenAI(base_url=f"{sandbox.url}/v1", api_key="k", max_retries=0, timeout=10)
        with client, pytest.raises(openai.NotFoundError) as missing:
            await anyio.to_thread.run_sync(lambda: client.videos.retrieve("video_nope"))  # pyright: ignore[reportDeprecated]  # the Sora API's shutdown notice; gateways still speak it
    assert raw.status_code == 404
    assert raw.json() == {
        "error": {
            "message": "Video not found",
            "type": "invalid_request_error",
            "param": "video_id",
            "code": "not_found",
        }
    }
    assert missing.value.code == "not_found" and missing.value.param == "video_id"
