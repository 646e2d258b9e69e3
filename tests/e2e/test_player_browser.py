"""The MCP App player (`ui://seedance/player`) in a real Chromium, inside a test host that speaks the app protocol.

The host page (tests/fakes/ui_host/host.html) reads the player from the server over a real MCP client, renders it in a
sandboxed iframe under the spec's CSP, and proxies the app's `tools/call` and `resources/read` to
`create_app(settings)` against the embedded sandbox. Chromium is the distribution's (`apt-get install chromium`),
driven by Playwright; the tests skip only when no Chromium binary exists.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.client.extension import advertise
from playwright.async_api import Frame, Page, async_playwright

from seedance_mcp.app import create_app
from tests.conftest import make_settings
from tests.fakes.ui_host.bridge import APP_MIME_TYPE, UI_EXTENSION, Bridge, serving_host

pytestmark = [pytest.mark.anyio, pytest.mark.browser]


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

requires_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary (/usr/bin/chromium): install the distribution's package, e.g. "
    "`apt-get install -y --no-install-recommends chromium`",
)


@dataclass
class Host:
    page: Page
    bridge: Bridge
    client: Client

    async def open(
        self,
        tool: str,
        arguments: dict[str, Any],
        approved_domains: list[str] | None = None,
        policy: str | None = None,
    ) -> Frame:
        """Show `tool`'s app in the host page and call the tool; the player's frame. `policy` replaces the CSP the
        host would build from the player's metadata."""
        await self.page.evaluate(
            "([tool, args, domains, policy]) => window.host.open(tool, args, domains, policy)",
            [tool, arguments, approved_domains, policy],
        )
        element = await self.page.wait_for_selector("#app")
        assert element is not None
        frame = await element.content_frame()
        assert frame is not None
        await frame.wait_for_selector("#status")
        return frame

    async def tool_result(self) -> dict[str, Any]:
        """The result of the tool call the host made for the app (the wire form the app was sent)."""
        return await self.page.evaluate("() => window.host.call")


@asynccontextmanager
async def player_host(tmp_path: Path, **overrides: Any) -> AsyncGenerator[Host]:
    """A test host page in Chromium, bridged to a real server on the embedded sandbox."""
    assert CHROMIUM is not None
    settings = make_settings(tmp_path, **overrides)
    apps = advertise(UI_EXTENSION, {"mimeTypes": [APP_MIME_TYPE]})
    async with (
        Client(create_app(settings), extensions=[apps]) as client,
        serving_host(client) as bridge,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page(viewport={"width": 760, "height": 1000})
            page.set_default_timeout(15_000)
            await page.goto(f"{bridge.url}/host.html")
            yield Host(page, bridge, client)
        finally:
            await browser.close()


PRICES = {"cn": {"1.5-pro": {"per_million": 16}}}
"""A list price for the sandbox's default model, so results carry a cost (the sandbox itself is free)."""

PLAYING = """() => {
  const video = document.getElementById("video");
  return video.readyState >= 2 && video.videoWidth > 0 && video.currentTime > 0;
}"""


@requires_chromium
async def test_the_player_plays_the_finished_video_through_the_host(tmp_path: Path) -> None:
    """A finished sandbox job plays in the <video> element, from bytes read through the host's resources/read."""
    with anyio.fail_after(30):
        async with player_host(tmp_path, prices=PRICES) as host:
            frame = await host.open("generate_video", {"prompt": "a red fox trotting through fresh snow"})
            await frame.wait_for_function(PLAYING)
            result = await host.tool_result()
            task = result["structuredContent"]
            assert task["status"] == "succeeded"

            video = await frame.evaluate(
                "() => { const v = document.getElementById('video'); return {width: v.videoWidth,"
                " height: v.videoHeight, source: v.dataset.source, src: v.src.slice(0, 16)}; }"
            )
            assert video["width"] > 0 and video["height"] > 0
            # The host enforces the spec's CSP (media-src 'self' data:), so the bytes play as a data: URL.
            assert video["source"] == "data" and video["src"].startswith("data:video/")
            assert host.bridge.resource_reads()[-1] == f"seedance://tasks/{task['task_id']}/video"

            # The facts of the job, and the gallery of this server's videos (list_tasks through the host).
            assert await frame.inner_text("#status") == "succeeded"
            assert await frame.inner_text("#f-prompt") == "a red fox trotting through fresh snow"
            assert await frame.inner_text("#f-model") == task["model"]
            assert await frame.inner_text("#f-task") == task["task_id"]
            cost = await frame.inner_text("#f-cost")
            if task["cost"] is not None:
                assert cost == f"{task['cost']:.2f} CNY"
            else:
                assert cost == f"≈ {task['estimated_cost']:.2f} CNY (estimated)"
            await frame.wait_for_selector(f"#gallery-list button[data-task-id='{task['task_id']}']")
            assert host.bridge.tool_calls("list_tasks")

            # The app told the host its size; the host resized the frame to fit it.
            sizes = await host.page.evaluate(
                "() => window.host.received.filter(m => m.method === 'ui/notifications/size-changed').length"
            )
            assert sizes >= 1
            await host.page.screenshot(path=tmp_path / "player-finished.png", full_page=True)


@requires_chromium
async def test_the_progress_bar_moves_while_a_job_renders(tmp_path: Path) -> None:
    """While a job renders the player polls get_task_status(wait=false) through the host and the bar advances."""
    # The sandbox speaking the OpenAI videos dialect, whose status carries a percent (Ark's carries none).
    with anyio.fail_after(35):
        async with player_host(tmp_path, sandbox_render_seconds=7.0, sandbox_as="openai-compatible") as host:
            frame = await host.open("generate_video", {"prompt": "clouds rolling over a mountain ridge", "wait": False})
            result = await host.tool_result()
            assert result["structuredContent"]["status"] in ("queued", "running")

            first = await frame.wait_for_function(
                "() => document.getElementById('progress').value > 0 && document.getElementById('progress').value"
            )
            first_value = float(await first.json_value())
            await host.page.screenshot(path=tmp_path / "player-rendering.png", full_page=True)
            later = await frame.wait_for_function(
                f"() => document.getElementById('progress').value > {first_value}"
                " && document.getElementById('progress').value"
            )
            assert float(await later.json_value()) > first_value

            # It keeps following the job to the end, and then plays it.
            await frame.wait_for_function(PLAYING, timeout=20_000)
            assert await frame.evaluate("() => document.getElementById('progress').value") == 100
            polls = host.bridge.tool_calls("get_task_status")
            assert len(polls) >= 2
            assert all(call == {"task_id": result["structuredContent"]["task_id"], "wait": False} for call in polls)


@requires_chromium
async def test_the_cancel_button_cancels_a_queued_job(tmp_path: Path) -> None:
    """Clicking Cancel on a queued job calls cancel_task through the host; the server then says `cancelled`."""
    with anyio.fail_after(30):
        async with player_host(tmp_path) as host:
            frame = await host.open("generate_video", {"prompt": "a lighthouse at dusk [[queue=30]]", "wait": False})
            task_id = (await host.tool_result())["structuredContent"]["task_id"]
            await frame.wait_for_function("() => document.body.dataset.status === 'queued'")
            await frame.wait_for_selector("#cancel:not([disabled])")

            await frame.click("#cancel")
            await frame.wait_for_function("() => document.body.dataset.status === 'cancelled'")
            assert host.bridge.tool_calls("cancel_task") == [{"task_id": task_id}]

            status = await host.client.call_tool("get_task_status", {"task_id": task_id})
            assert status.structured_content is not None
            assert status.structured_content["status"] == "cancelled"
            assert await frame.is_disabled("#cancel")


@requires_chromium
async def test_the_player_streams_the_provider_url_when_the_host_allows_its_origin(tmp_path: Path) -> None:
    """A host that approves the video's origin for media gets it played from the provider URL, not read as bytes."""
    with anyio.fail_after(30):
        async with player_host(tmp_path) as host:
            # The embedded sandbox's port is only known once it runs: one job finds it.
            first = await host.client.call_tool("generate_video", {"prompt": "a paper boat on a pond"})
            assert first.structured_content is not None
            origin = "/".join(first.structured_content["video_url"].split("/")[:3])

            frame = await host.open("get_task_status", {"task_id": first.structured_content["task_id"]}, [origin])
            await frame.wait_for_function(PLAYING)
            assert await frame.evaluate("() => document.getElementById('video').dataset.source") == "url"
            assert not any(uri.endswith("/video") for uri in host.bridge.resource_reads())


NO_MEDIA_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:;"
"""A host stricter than the spec: no media-src at all, so neither blob:, data: nor any URL may play."""


@requires_chromium
async def test_the_player_explains_a_blocked_video_and_offers_the_path_link_and_preview(tmp_path: Path) -> None:
    """Under a CSP without media-src nothing can play: the stage says the host's policy blocks it, shows the saved
    path, the preview picture and a button that asks the host to open the provider's link; no dead 0:00 frame."""
    with anyio.fail_after(30):
        async with player_host(tmp_path) as host:
            frame = await host.open("generate_video", {"prompt": "a heron in the reeds"}, policy=NO_MEDIA_POLICY)
            await frame.wait_for_selector("#stage.unavailable")
            task = (await host.tool_result())["structuredContent"]
            assert task["status"] == "succeeded" and task["video_path"]

            assert "content policy" in await frame.inner_text("#unavailable-why")
            assert await frame.inner_text("#unavailable-path-text") == task["video_path"]
            stage = await frame.evaluate(
                "() => ({classes: [...document.getElementById('stage').classList],"
                " video: getComputedStyle(document.getElementById('video')).display,"
                " source: document.getElementById('video').dataset.source})"
            )
            assert "has-video" not in stage["classes"] and stage["video"] == "none" and stage["source"] == "none"
            await frame.wait_for_function("() => document.getElementById('unavailable').dataset.preview === 'shown'")
            assert task["task_id"] in " ".join(host.bridge.resource_reads()) and any(
                uri.endswith("/preview") for uri in host.bridge.resource_reads()
            )

            await frame.click("#open-link")
            await host.page.wait_for_function("() => window.host.received.some((m) => m.method === 'ui/open-link')")
            opened = await host.page.evaluate(
                "() => window.host.received.filter((m) => m.method === 'ui/open-link').map((m) => m.params.url)"
            )
            assert opened == [task["video_url"]]
            await host.page.screenshot(path=tmp_path / "player-blocked.png", full_page=True)


def _refuse_link(video_url: str) -> None:
    """Make the sandbox's signed link for a video answer 403 from now on (a request with a stale signature version
    moves the task's URL on, as an expired Ark link would be)."""
    import re

    import httpx

    stale = re.sub(r"([?&]v=)\d+", r"\g<1>stale", video_url)
    assert httpx.get(stale).status_code == 403
    assert httpx.get(video_url).status_code == 403


@requires_chromium
async def test_a_refused_provider_link_falls_back_to_the_saved_file(tmp_path: Path) -> None:
    """The host allows the provider's origin but the link answers 403: the player plays the saved bytes instead."""
    with anyio.fail_after(30):
        async with player_host(tmp_path) as host:
            first = await host.client.call_tool("generate_video", {"prompt": "a tram in the fog"})
            task = first.structured_content or {}
            origin = "/".join(task["video_url"].split("/")[:3])
            await anyio.to_thread.run_sync(_refuse_link, task["video_url"])

            frame = await host.open("get_task_status", {"task_id": task["task_id"]}, [origin])
            await frame.wait_for_function(PLAYING)
            assert await frame.evaluate("() => document.getElementById('video').dataset.source") == "data"
            assert host.bridge.resource_reads()[-1] == f"seedance://tasks/{task['task_id']}/video"


@requires_chromium
async def test_a_refused_link_and_a_missing_file_are_explained_with_the_path(tmp_path: Path) -> None:
    """The link answers 403 and the saved MP4 is gone: the player says both, and still shows where it was saved."""
    with anyio.fail_after(30):
        async with player_host(tmp_path) as host:
            first = await host.client.call_tool("generate_video", {"prompt": "a kettle on a stove"})
            task = first.structured_content or {}
            origin = "/".join(task["video_url"].split("/")[:3])
            await anyio.to_thread.run_sync(_refuse_link, task["video_url"])
            Path(task["video_path"]).unlink()

            frame = await host.open("get_task_status", {"task_id": task["task_id"]}, [origin])
            await frame.wait_for_selector("#stage.unavailable")
            why = await frame.inner_text("#unavailable-why")
            assert "link did not play" in why and "could not be read" in why and "fetching it from the provider" in why
            assert await frame.inner_text("#unavailable-path-text") == task["video_path"]
            assert not await frame.evaluate("() => document.getElementById('stage').classList.contains('has-video')")


@requires_chromium
async def test_a_failed_jobs_message_appears_once(tmp_path: Path) -> None:
    """A job the provider failed: its message is on the page exactly once (not in the stage and the message line)."""
    with anyio.fail_after(30):
        async with player_host(tmp_path) as host:
            frame = await host.open(
                "generate_video", {"prompt": "a storm at sea [[fail=OutputVideoSensitiveContentDetected]]"}
            )
            await frame.wait_for_function("() => document.body.dataset.status === 'failed'")
            task = (await host.tool_result())["structuredContent"]
            message = task["error_message"]
            assert message
            text = await frame.evaluate("() => document.body.innerText")
            assert text.count(message) == 1, text
            assert await frame.inner_text("#message") == message
            assert "OutputVideoSensitiveContentDetected" in await frame.inner_text("#placeholder")
