"""`seedance-mcp serve --http`: streamable HTTP with a bearer token and DNS-rebinding protection.

The Host check accepts loopback names, the bind address when it is a concrete one, and the public names the user
declares (`SEEDANCE_PUBLIC_HOSTS`, the host of `SEEDANCE_PUBLIC_URL`); anything else gets 421, whose body names
those settings. Browser pages on the origins of `SEEDANCE_CORS_ORIGINS` may call it across origins (CORS, and the
SDK's own Origin check told the same list). uvicorn runs with
no logging configuration of its own, so its records go through the server's stderr handler (and its secret
redaction) instead of uvicorn's stdout access handler, with query-string credentials masked on the way."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import anyio
import anyio.to_thread
from mcp.server import MCPServer
from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from seedance_mcp.config import Settings

if TYPE_CHECKING:
    import socket

    from seedance_mcp.principals import PrincipalTokenVerifier
    from seedance_mcp.runtime import LazyRuntime

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
LOOPBACK_HOSTS = [*LOOPBACK_NAMES, *(f"{name}:*" for name in LOOPBACK_NAMES)]
WILDCARD_BINDS = ("0.0.0.0", "::", "")

logger = logging.getLogger("seedance_mcp.http")


def url_host(host: str) -> str:
    """A host as it appears in a URL or a Host header: IPv6 addresses in brackets, lower-case."""
    host = host.strip().lower()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def is_loopback(host: str) -> bool:
    import ipaddress

    bare = host.strip().strip("[]").lower()
    if bare == "localhost":
        return True
    try:
        return ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def _split_host(entry: str) -> tuple[str, str | None]:
    """`host[:port]` → (host, port or None); `[v6]:port` keeps its brackets."""
    if entry.startswith("["):
        name = entry[: entry.index("]") + 1]
        rest = entry[len(name) :]
        return name, rest[1:] if rest.startswith(":") else None
    name, colon, port = entry.partition(":")
    return name, port if colon else None


def public_host_entries(settings: Settings) -> tuple[str, ...]:
    """The declared public hosts plus the host of the public URL, each once."""
    entries = list(settings.public_hosts)
    if settings.public_url:
        from urllib.parse import urlsplit

        entries.append(urlsplit(settings.public_url).netloc.lower())
    return tuple(dict.fromkeys(entries))


def allowed_hosts(bind_host: str, port: int, public_hosts: Iterable[str] = ()) -> list[str]:
    """Host header values to accept: loopback (any port), each public host with and without a port (a name declared
    without one matches any port, one declared with a port also matches the bare name a proxy on :80/:443 sends),
    and the bind address when it is a concrete one."""
    allowed = list(LOOPBACK_HOSTS)

    def add(*values: str) -> None:
        allowed.extend(v for v in values if v not in allowed)

    for entry in public_hosts:
        name, entry_port = _split_host(entry.strip().lower())
        add(*((f"{name}:{entry_port}", name) if entry_port else (name, f"{name}:*")))
    if bind_host.strip() not in WILDCARD_BINDS and not is_loopback(bind_host):
        add(url_host(bind_host), f"{url_host(bind_host)}:{port}")
    return allowed


def allowed_origins(hosts: Iterable[str]) -> list[str]:
    """The http and https origins of the allowed Host values (a browser page served under one of them)."""
    return [f"{scheme}://{host}" for host in hosts for scheme in ("http", "https")]


@dataclass(frozen=True)
class HttpPlan:
    """Everything `serve_http` derives from the settings and the bound address."""

    url: str
    """The URL clients use: the public URL's `/mcp`, else the local one."""
    verifier: PrincipalTokenVerifier | None
    auth: AuthSettings | None
    security: TransportSecuritySettings
    warnings: tuple[str, ...]
    cors_origins: tuple[str, ...] = ()
    """Origins of browser pages allowed to call across origins (SEEDANCE_CORS_ORIGINS)."""


def http_plan(settings: Settings, *, host: str, port: int, token: str | None) -> HttpPlan:
    """Auth, transport security, the announced URL and start-up warnings for a bind address and the actual port."""
    public = public_host_entries(settings)
    hosts = allowed_hosts(host, port, public)
    # The SDK checks Origin itself (403 "Invalid Origin header") before CORS matters: the browser origins the operator
    # lists must pass that check too, or a CORS-allowed page is refused all the same.
    origins = [*allowed_origins(hosts), *(o for o in settings.cors_origins if o not in allowed_origins(hosts))]
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )
    wildcard = host.strip() in WILDCARD_BINDS
    local_base = f"http://{'127.0.0.1' if wildcard else url_host(host)}:{port}"
    base = settings.public_url.rstrip("/") if settings.public_url else local_base
    warnings: list[str] = []
    if wildcard and token is not None and not public:
        warnings.append(
            f"serve --http listens on every interface ({host or '*'}:{port}) but no public host name is set: remote "
            "clients will get 421 (Invalid Host header) until SEEDANCE_PUBLIC_HOSTS (or SEEDANCE_PUBLIC_URL) names "
            "the host they connect to, e.g. SEEDANCE_PUBLIC_HOSTS=video.example.com"
        )
    cors = settings.cors_origins
    if token is None and settings.tokens_file is None:
        return HttpPlan(f"{base}/mcp", None, None, security, tuple(warnings), cors)
    from seedance_mcp.principals import PrincipalTokenVerifier, load_principals

    principals = load_principals(settings.tokens_file) if settings.tokens_file else {}
    auth = AuthSettings(
        issuer_url=base,  # pyright: ignore[reportArgumentType]
        resource_server_url=f"{base}/mcp",  # pyright: ignore[reportArgumentType]
        required_scopes=["video"],
        validate_token_resource=False,
    )
    verifier = PrincipalTokenVerifier(principals, single=token)
    return HttpPlan(f"{base}/mcp", verifier, auth, security, tuple(warnings), cors)


def announcement(plan: HttpPlan, *, host: str, port: int, token: str | None) -> str:
    """The start-up line: where to connect, and whether a token is needed."""
    detail = "bearer token required" if plan.verifier is not None else "no token: local clients only"
    listening = f"{url_host(host) or '*'}:{port}"
    if listening not in plan.url:
        detail += f"; listening on {listening}"
    return f"seedance-mcp: serving MCP over HTTP at {plan.url} ({detail})"


def _configured_redactors() -> list[logging.Filter]:
    """The `RedactSecrets` filters `configure_logging` put on the root handlers (the configured secrets)."""
    from seedance_mcp.logs import RedactSecrets

    return [f for h in logging.getLogger().handlers for f in h.filters if isinstance(f, RedactSecrets)]


class CannotListen(OSError):
    """The address could not be bound (port taken, address not local, no permission)."""


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (`::`-style addresses over IPv6)."""
    import socket

    bare = host.strip().strip("[]") or "0.0.0.0"
    # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on accepted sockets whose `proto` says TCP; without it
    # every answer written in two pieces (headers, body) waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(socket.AF_INET6 if ":" in bare else socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((bare, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise CannotListen(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def serve_http(
    settings: Settings,
    *,
    host: str,
    port: int,
    token: str | None,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Bind, announce the URL through `announce` (the socket already accepts connections), serve until a signal.

    `port=0` picks a free port; the announcement and the OAuth metadata name the real one. Raises `CannotListen` when
    the address cannot be bound."""
    import anyio
    import uvicorn

    from seedance_mcp.access_log import protect_uvicorn_logs
    from seedance_mcp.app import create_app

    protect_uvicorn_logs([token, settings.key], extra=_configured_redactors())
    sock = bind(host, port)
    bound_port: int = sock.getsockname()[1]
    plan = http_plan(settings, host=host, port=bound_port, token=token)
    metrics_sock: socket.socket | None = None
    if settings.metrics_address is not None:
        metrics_host, _, metrics_port = settings.metrics_address.rpartition(":")
        try:
            metrics_sock = bind(metrics_host.strip("[]"), int(metrics_port))
        except CannotListen:
            sock.close()
            raise
    if settings.public_url and not settings.upload_url:
        settings = settings.model_copy(update={"hosted_uploads": True})  # local references served from here
    runtimes: list[LazyRuntime] = []
    server = create_app(settings, token_verifier=plan.verifier, auth=plan.auth, runtimes=runtimes)
    add_operations_routes(server, settings, runtimes, plan.verifier)
    if settings.hosted_uploads:
        add_media_route(server, settings)
    app = server.streamable_http_app(
        transport_security=plan.security, host=host, stateless_http=settings.http_stateless
    )
    config = uvicorn.Config(
        with_browser_support(app, plan),
        host=host,
        port=bound_port,
        log_config=None,  # records propagate to the server's stderr handler; uvicorn's own sends access to stdout
        log_level=settings.log_level.lower(),
    )
    for warning in plan.warnings:
        logger.warning(warning)
    from seedance_mcp.process import tune_garbage_collector

    tune_garbage_collector()
    if announce is not None:
        line = announcement(plan, host=host, port=bound_port, token=token)
        if metrics_sock is not None:
            metrics_host, metrics_port = metrics_sock.getsockname()[:2]
            line += f"; metrics at http://{url_host(str(metrics_host))}:{metrics_port}/metrics (no token)"
        announce(line)
    with sock:
        if metrics_sock is None:
            anyio.run(uvicorn.Server(config).serve, [sock])
            return
        with metrics_sock:
            metrics = _metrics_only_server(settings, runtimes)
            anyio.run(_serve_both, uvicorn.Server(config), sock, metrics, metrics_sock)


MCP_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Mcp-Session-Id",
    "MCP-Protocol-Version",
    "Last-Event-ID",
    # 2026-07-28 requests name their method and target in headers: without these a browser's preflight fails.
    "Mcp-Method",
    "Mcp-Name",
)
"""Headers a browser MCP client sends, which a CORS preflight must allow."""
MCP_RESPONSE_HEADERS = ("Mcp-Session-Id", "MCP-Protocol-Version", "WWW-Authenticate")
"""Headers a browser MCP client must be able to read from an answer (its session, the protocol, the OAuth challenge)."""


def with_browser_support(app: Any, plan: HttpPlan) -> Any:
    """The HTTP app with the SDK's bare Host/Origin refusals explained, and CORS for the origins the operator lists
    (outside the bearer check: a preflight carries no token, and a 401 must be readable by the page)."""
    from starlette.middleware.cors import CORSMiddleware

    app.add_middleware(ExplainRefusals)
    if plan.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(plan.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=list(MCP_REQUEST_HEADERS),
            expose_headers=list(MCP_RESPONSE_HEADERS),
            max_age=600,
        )
    return app


class ExplainRefusals:
    """ASGI middleware: the SDK answers a Host it does not accept with a bare `421 Invalid Host header` and an Origin
    with `403 Invalid Origin header`; a person reading that cannot tell what to change. Those two answers (and only
    those: other 403s pass untouched) get a body naming the settings that let the name or the page in."""

    _REFUSALS: ClassVar[frozenset[tuple[int, bytes]]] = frozenset(
        {(421, b"Invalid Host header"), (403, b"Invalid Origin header")}
    )

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] | None = None

        async def explain(message: dict[str, Any]) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and message["status"] in (421, 403):
                held = message  # sent once the body shows which refusal this is
                return
            if held is not None and message["type"] == "http.response.body":
                start, held = held, None
                body: bytes = message.get("body", b"")
                if not message.get("more_body") and (start["status"], body) in self._REFUSALS:
                    text = refusal_text(start["status"], _headers(scope)).encode()
                    headers = [
                        (k, v) for k, v in start["headers"] if k.lower() not in (b"content-length", b"content-type")
                    ]
                    headers += [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"%d" % len(text))]
                    await send({**start, "headers": headers})
                    await send({"type": "http.response.body", "body": text})
                    return
                await send(start)
            await send(message)

        await self.app(scope, receive, explain)


def _headers(scope: Any) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


def refusal_text(status: int, headers: dict[str, str]) -> str:
    """What a refused Host (421) or Origin (403) needs: the setting that lets it in, and the value that was sent."""

    def shown(value: str) -> str:
        printable = "".join(c for c in value if c.isprintable())[:100]
        return repr(printable) if printable else "none"

    if status == 421:
        return (
            f"Invalid Host header {shown(headers.get('host', ''))}: this server answers only to the names it was "
            "given. Its operator lets remote clients in with SEEDANCE_PUBLIC_HOSTS (the names they use, e.g. "
            "video.example.com) or SEEDANCE_PUBLIC_URL (the URL they use, e.g. https://video.example.com), "
            "together with SEEDANCE_HTTP_TOKEN or SEEDANCE_TOKENS_FILE.\n"
        )
    return (
        f"Invalid Origin header {shown(headers.get('origin', ''))}: browser pages on that origin may not call this "
        "server. Its operator lists the origins of browser clients in SEEDANCE_CORS_ORIGINS (e.g. "
        "https://app.example.com).\n"
    )


def _metrics_only_server(settings: Settings, runtimes: list[LazyRuntime]) -> Any:
    """A uvicorn server of one route, `/metrics` without a token, for SEEDANCE_METRICS_ADDRESS."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = Starlette(routes=[Route("/metrics", _scrape_handler(runtimes), methods=["GET"])])

    class MetricsServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None]:
            yield  # SIGINT/SIGTERM are the main server's, which stops this one when it stops

    return MetricsServer(uvicorn.Config(app, log_config=None, log_level=settings.log_level.lower(), lifespan="off"))


async def _serve_both(main: Any, main_sock: socket.socket, metrics: Any, metrics_sock: socket.socket) -> None:
    """The MCP server and the metrics listener; when the main one stops (a signal), the metrics one follows."""
    async with anyio.create_task_group() as group:
        group.start_soon(metrics.serve, [metrics_sock])
        try:
            await main.serve([main_sock])
        finally:
            metrics.should_exit = True


def add_operations_routes(
    server: MCPServer[LazyRuntime],
    settings: Settings,
    runtimes: list[LazyRuntime],
    verifier: PrincipalTokenVerifier | None = None,
) -> None:
    """`/healthz` (the process can work: 503 once its runtime stopped for good), `/readyz` (the journal and the
    provider answer), `/metrics` (Prometheus).

    Outside the MCP endpoint and its bearer check, as load balancers expect; they show no job, prompt, key or
    token. `/metrics` shows the whole server's counts (never per person), so it wants a bearer token `verifier`
    accepts (any principal's, or SEEDANCE_HTTP_TOKEN) when there is one; SEEDANCE_METRICS_ADDRESS serves it alone,
    without a token, on a listener of its own."""
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response

    from seedance_mcp import metrics

    metrics.enable()

    async def healthz(request: Request) -> Response:
        # Alive while the process can still do its work by itself (a journal outage included); a runtime that
        # stopped for good is reported, so an orchestrator restarts the process.
        died = runtimes[0].died if runtimes else None
        if died is not None:
            return JSONResponse({"alive": False, "runtime": died}, status_code=503)
        return PlainTextResponse("ok\n")

    async def readyz(request: Request) -> Response:
        from seedance_mcp.errors import JournalUnavailable

        checks = {"journal": "not open yet", "provider": "not checked"}
        ready = False
        if runtimes:
            try:
                with anyio.fail_after(5):
                    runtime = await runtimes[0].get()
                    await runtime.jobs.store.recent(None, 1)
                    checks["journal"] = "ok"
                    why = await runtime.provider.unreachable_because(within=3.0)
                    checks["provider"] = "ok" if why is None else f"unreachable ({why})"
                    ready = checks["provider"] == "ok"
            except Exception as exc:  # a readiness probe reports failures; it never raises them
                reason = f"unavailable ({exc.reason})" if isinstance(exc, JournalUnavailable) else type(exc).__name__
                checks["journal" if checks["journal"] != "ok" else "provider"] = reason
        return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)

    scrape = _scrape_handler(runtimes)

    async def scrape_with_token(request: Request) -> Response:
        if verifier is not None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token or await verifier.verify_token(token.strip()) is None:
                return PlainTextResponse(
                    "/metrics needs the bearer token /mcp accepts (or scrape SEEDANCE_METRICS_ADDRESS).\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
        return await scrape(request)

    server.custom_route("/healthz", methods=["GET"])(healthz)
    server.custom_route("/readyz", methods=["GET"])(readyz)
    server.custom_route("/metrics", methods=["GET"])(scrape_with_token)


def add_media_route(server: MCPServer[LazyRuntime], settings: Settings, clock: Callable[[], float] = time.time) -> None:
    """`/media/<sha256>.<ext>?exp=…&kid=…&sig=…`: an uploaded reference file, for the provider to fetch (hosted mode).

    Outside the bearer check (the provider has no token); the signed link is the permission. A forged, altered or
    expired link gets one 403 without detail; only files of the uploads directory, named by their hash, are served.
    Starlette's FileResponse answers HEAD and Range requests itself."""
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, Response

    from seedance_mcp.media.uploads import hosted_file, link_keys, uploads_directory
    from seedance_mcp.tools.approval import state_dir_key

    directory = uploads_directory(settings)
    keys: dict[str, bytes] = {}

    async def media(request: Request) -> Response:
        if not keys:
            shared = [key.get_secret_value().encode() for key in settings.request_state_keys]
            keys.update(link_keys(shared or [await anyio.to_thread.run_sync(state_dir_key, settings.state_dir)]))
        found = hosted_file(keys, directory, request.path_params["name"], request.query_params, clock())
        if found is None:
            return PlainTextResponse(
                "This link is not valid or has expired.\n", status_code=403, headers={"Cache-Control": "no-store"}
            )
        path, content_type = found
        if not await anyio.to_thread.run_sync(path.is_file):
            return PlainTextResponse("Not found.\n", status_code=404, headers={"Cache-Control": "no-store"})
        return FileResponse(
            path,
            media_type=content_type,
            headers={"Cache-Control": "private, max-age=0", "X-Content-Type-Options": "nosniff"},
        )

    server.custom_route("/media/{name}", methods=["GET", "HEAD"])(media)


def _scrape_handler(runtimes: list[LazyRuntime]) -> Callable[[Any], Awaitable[Any]]:
    """The Prometheus exposition: this process's counters, and the journal's counts read at scrape time."""

    async def scrape(request: Any) -> Any:
        import time

        from prometheus_client import CONTENT_TYPE_LATEST
        from starlette.responses import Response

        from seedance_mcp import metrics
        from seedance_mcp.errors import JournalUnavailable
        from seedance_mcp.journal import start_of_day

        store = None
        today = start_of_day(time.time())
        if runtimes:
            with anyio.move_on_after(5), contextlib.suppress(JournalUnavailable):
                jobs = (await runtimes[0].get()).jobs
                store, today = jobs.store, start_of_day(jobs.now())  # the day the journal's clock says
        try:
            text = await metrics.render(store, today)
        except JournalUnavailable:  # an outage: this process's own counters still answer
            text = await metrics.render(None, today)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    return scrape
