"""Browser-based MCP hosts on another origin: CORS for `/mcp` (SEEDANCE_CORS_ORIGINS), mirrored into the SDK's own
Origin check, over real HTTP to `serve --http` and from a real Chromium page; and the refusals that say what to set.
"""

from __future__ import annotations

from typing import Any

import anyio
import httpx
import pytest
from playwright.async_api import async_playwright

from tests.test_http_transport import AUTHORIZED, INITIALIZE, JSON_HEADERS, QUIET_PROVIDER, TOKEN, http_server
from tests.test_player_browser import CHROMIUM, CHROMIUM_ARGS, requires_chromium
from tests.tiny_http import answer, serving

pytestmark = pytest.mark.anyio

BROWSER_REQUEST_HEADERS = [
    "authorization",
    "content-type",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
    "mcp-method",
    "mcp-name",
]
"""Everything a browser MCP client of either protocol era sends (2026-07-28 adds Mcp-Method and Mcp-Name)."""


def _listed(header: str | None) -> set[str]:
    return {part.strip().lower() for part in (header or "").split(",") if part.strip()}


def _preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": ", ".join(BROWSER_REQUEST_HEADERS),
    }


@pytest.mark.subprocess
async def test_a_listed_origin_gets_cors_answers_and_another_is_refused(tmp_path: Any) -> None:
    page = "https://app.example.com"
    async with (
        http_server(tmp_path, SEEDANCE_HTTP_TOKEN=TOKEN, SEEDANCE_CORS_ORIGINS=f"{page}/", **QUIET_PROVIDER) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        preflight = await client.options("/mcp", headers=_preflight(page))
        call = await client.post("/mcp", json=INITIALIZE, headers={**AUTHORIZED, "Origin": page})
        no_token = await client.post("/mcp", json=INITIALIZE, headers={**JSON_HEADERS, "Origin": page})
        other_preflight = await client.options("/mcp", headers=_preflight("https://evil.example"))
        other_call = await client.post(
            "/mcp", json=INITIALIZE, headers={**AUTHORIZED, "Origin": "https://evil.example"}
        )

    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == page
    assert _listed(preflight.headers["access-control-allow-headers"]) >= set(BROWSER_REQUEST_HEADERS)
    assert {"GET", "POST", "DELETE"} <= {
        m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")
    }

    assert call.status_code == 200 and "seedance" in call.text
    assert call.headers["access-control-allow-origin"] == page
    exposed = _listed(call.headers["access-control-expose-headers"])
    assert {"mcp-session-id", "mcp-protocol-version", "www-authenticate"} <= exposed
    assert call.headers["mcp-session-id"]

    # The OAuth challenge reaches the page too: CORS sits outside the bearer check.
    assert no_token.status_code == 401
    assert no_token.headers["access-control-allow-origin"] == page and "www-authenticate" in no_token.headers

    assert other_preflight.status_code == 400 and "access-control-allow-origin" not in other_preflight.headers
    assert other_call.status_code == 403 and "access-control-allow-origin" not in other_call.headers
    assert "SEEDANCE_CORS_ORIGINS" in other_call.text and "https://evil.example" in other_call.text


@pytest.mark.subprocess
async def test_without_listed_origins_a_page_on_another_origin_is_refused_with_what_to_set(tmp_path: Any) -> None:
    async with (
        http_server(tmp_path, SEEDANCE_HTTP_TOKEN=TOKEN, **QUIET_PROVIDER) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        preflight = await client.options("/mcp", headers=_preflight("https://app.example.com"))
        call = await client.post("/mcp", json=INITIALIZE, headers={**AUTHORIZED, "Origin": "https://app.example.com"})
        local = await client.post("/mcp", json=INITIALIZE, headers=AUTHORIZED)
    assert "access-control-allow-origin" not in preflight.headers
    assert call.status_code == 403 and "SEEDANCE_CORS_ORIGINS" in call.text
    assert local.status_code == 200


@pytest.mark.subprocess
async def test_the_421_for_an_unknown_host_names_the_settings_that_let_it_in(tmp_path: Any) -> None:
    """A remote client reaching the server under a name it was not given: the body says what the operator sets."""
    async with (
        http_server(tmp_path, "--host", "0.0.0.0", SEEDANCE_HTTP_TOKEN=TOKEN, **QUIET_PROVIDER) as server,
        httpx.AsyncClient(base_url=server.url, timeout=10) as client,
    ):
        remote = await client.post("/mcp", json=INITIALIZE, headers={**AUTHORIZED, "Host": "video.example.com"})
        unauthenticated = await client.post("/mcp", json=INITIALIZE, headers=JSON_HEADERS)
    assert remote.status_code == 421
    assert remote.headers["content-type"].startswith("text/plain")
    for named in ("SEEDANCE_PUBLIC_HOSTS", "SEEDANCE_PUBLIC_URL", "'video.example.com'"):
        assert named in remote.text, remote.text
    assert unauthenticated.status_code == 401  # other refusals are the SDK's own, untouched


PAGE = "<!doctype html><title>a browser MCP client</title>"

BROWSER_CLIENT = """
async ([mcp, token]) => {
  const out = {};
  const base = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"};
  const auth = {"Authorization": "Bearer " + token};
  const body = (r) => r.text().then((t) => { const m = /data: (.*)/.exec(t); return JSON.parse(m ? m[1] : t); });
  try {
    const r = await fetch(mcp, {method: "POST", headers: base, body: "{}"});
    out.unauthenticated = {status: r.status, challenge: r.headers.get("WWW-Authenticate")};
  } catch (e) { out.unauthenticated = "failed: " + e.message; }
  try {  // 2025-11-25: initialize, read the session id, list the tools on the session
    const init = {jsonrpc: "2.0", id: 1, method: "initialize",
      params: {protocolVersion: "2025-11-25", capabilities: {}, clientInfo: {name: "page", version: "0"}}};
    const r = await fetch(mcp, {method: "POST", headers: {...base, ...auth}, body: JSON.stringify(init)});
    const session = r.headers.get("Mcp-Session-Id");
    await body(r);
    const h = {...base, ...auth, "Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"};
    await fetch(mcp, {method: "POST", headers: h,
      body: JSON.stringify({jsonrpc: "2.0", method: "notifications/initialized"})});
    const list = await body(await fetch(mcp, {method: "POST", headers: h,
      body: JSON.stringify({jsonrpc: "2.0", id: 2, method: "tools/list"})}));
    out.legacy = {session: Boolean(session), tools: list.result.tools.map((t) => t.name)};
  } catch (e) { out.legacy = "failed: " + e.message; }
  try {  // 2026-07-28: the envelope in _meta, and the method and target in headers
    const meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {}};
    const h = {...base, ...auth, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call",
      "Mcp-Name": "list_models"};
    const call = await body(await fetch(mcp, {method: "POST", headers: h, body: JSON.stringify({jsonrpc: "2.0",
      id: 3, method: "tools/call", params: {name: "list_models", arguments: {}, _meta: meta}})}));
    out.modern = {isError: call.result.isError, provider: call.result.structuredContent.provider};
  } catch (e) { out.modern = "failed: " + e.message; }
  return out;
}
"""


@requires_chromium
@pytest.mark.subprocess
@pytest.mark.browser
async def test_a_browser_page_on_a_listed_origin_speaks_both_eras_and_another_origin_cannot(tmp_path: Any) -> None:
    """Chromium enforces CORS for real: the listed page completes a 2025-11-25 session and a 2026-07-28 call (whose
    Mcp-Method/Mcp-Name headers must pass the preflight); the same page under another origin gets nothing."""
    assert CHROMIUM is not None
    with anyio.fail_after(60):
        async with serving(lambda _: answer(200, PAGE, content_type="text/html")) as page_server:
            port = page_server.url.rsplit(":", 1)[1]
            listed, unlisted = f"http://127.0.0.1:{port}", f"http://localhost:{port}"
            async with (
                http_server(tmp_path, SEEDANCE_HTTP_TOKEN=TOKEN, SEEDANCE_CORS_ORIGINS=listed, **QUIET_PROVIDER) as mcp,
                async_playwright() as playwright,
            ):
                browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
                try:
                    page = await browser.new_page()
                    results: dict[str, Any] = {}
                    for origin in (listed, unlisted):
                        await page.goto(f"{origin}/")
                        results[origin] = await page.evaluate(BROWSER_CLIENT, [f"{mcp.url}/mcp", TOKEN])
                finally:
                    await browser.close()
    allowed = results[listed]
    assert allowed["unauthenticated"]["status"] == 401 and "Bearer" in allowed["unauthenticated"]["challenge"]
    assert allowed["legacy"]["session"] is True and "generate_video" in allowed["legacy"]["tools"]
    assert allowed["modern"] == {"isError": False, "provider": "ark"}
    refused = results[unlisted]
    assert all(str(refused[key]).startswith("failed: ") for key in ("unauthenticated", "legacy", "modern")), refused
