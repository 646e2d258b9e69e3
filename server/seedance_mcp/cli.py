"""The command line: `seedance-mcp` (stdio server), `serve --http`, `sandbox`, `demo`. The only place that reads the
environment (through `load_settings`)."""

from __future__ import annotations

import contextlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def _parser() -> argparse.ArgumentParser:
    import argparse

    from seedance_mcp import __version__

    parser = argparse.ArgumentParser(
        prog="seedance-mcp",
        description="MCP server for ByteDance Seedance video generation. With no command: the stdio server.",
    )
    parser.add_argument("--version", action="version", version=f"seedance-mcp {__version__}")
    commands = parser.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    sandbox = commands.add_parser("sandbox", help="run the sandbox provider alone on 127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8766)
    sandbox.add_argument("--render-seconds", type=float, default=6.0, help="time from create to success")
    token = commands.add_parser("token", help="make a bearer token for a principal (for SEEDANCE_TOKENS_FILE)")
    token.add_argument("name", help="the principal, e.g. a person's name")
    token.add_argument(
        "--file",
        default=None,
        help="add the principal to this tokens file (created 0600 if missing) and print only the token",
    )
    demo = commands.add_parser("demo", help="make a video on the sandbox through a real MCP client over stdio")
    demo.add_argument("prompt", nargs="?", default="a paper boat drifting down a rainy street, cinematic")
    demo.add_argument("--output-dir", default=None, help="where to save the MP4 (default: ./seedance-demo)")
    demo.add_argument("--open", action="store_true", help="open the saved video with the system's player")
    return parser


def run(argv: list[str]) -> int:
    if not argv:  # what MCP hosts launch: skip building the parser, every millisecond of start-up shows
        return _serve_stdio()
    args = _parser().parse_args(argv)
    if args.command == "sandbox":
        return _run_sandbox(args.port, args.render_seconds)  # reads SEEDANCE_SANDBOX_AS, SEEDANCE_MODEL_MAP
    if args.command == "demo":
        from seedance_mcp.demo import run_demo

        return run_demo(args.prompt, args.output_dir, open_video=args.open)
    if args.command == "token":
        return _new_token(args.name, args.file)
    if args.command == "serve" and args.http:
        return _serve_http(args.host, args.port)
    return _serve_stdio()


def _settings(**overrides: Any) -> Any:
    from pydantic import ValidationError

    from seedance_mcp.config import load_settings
    from seedance_mcp.logs import configure_logging

    try:
        settings = load_settings(**overrides)
    except ValidationError as exc:
        configure_logging("INFO")
        problems = "; ".join(_problem(e["loc"], e["msg"]) for e in exc.errors())
        sys.stderr.write(f"seedance-mcp: invalid configuration: {problems}\n")
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.secrets())
    return settings


def _problem(loc: Any, message: str) -> str:
    """One configuration error: the variable it is about, and what is wrong (a check of the whole configuration,
    such as the catalog file's, names its variable itself)."""
    message = message.removeprefix("Value error, ")
    if not loc:
        return message
    return f"SEEDANCE_{'_'.join(str(p) for p in loc).upper()}: {message}"


def _serve_stdio() -> int:
    settings = _settings()
    from seedance_mcp.app import create_app
    from seedance_mcp.process import tune_garbage_collector

    _exit_soon_after_interrupt()
    try:
        # Built inside the `try`: a Ctrl-C while the app is being built is a stop like any other (uncaught, the
        # interpreter would die of the signal instead of exiting with 130).
        app = create_app(settings)
        tune_garbage_collector()
        if sys.stdin.isatty():
            # A person ran it in a terminal: say what it is, or it looks hung.
            sys.stderr.write(
                "seedance-mcp: an MCP server, waiting for an MCP client on stdin/stdout (Claude Desktop, Cursor, VS "
                "Code and the like start it themselves). To see it work: `seedance-mcp demo`. Ctrl-C stops it.\n"
            )
        app.run()
    except KeyboardInterrupt:
        sys.stderr.write("seedance-mcp: stopped.\n")
        return 130
    return 0


def _exit_soon_after_interrupt() -> None:
    """Ctrl-C stops the server: a graceful shutdown first, and an exit within two seconds however it goes (the
    SDK's stdio reader waits in a thread for a line that never comes)."""
    import os
    import signal
    import threading

    def interrupted(signum: int, frame: Any) -> None:
        threading.Timer(2.0, os._exit, args=(130,)).start()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, interrupted)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve_http(host: str, port: int) -> int:
    """`serve --http` until Ctrl-C (exit 130, after a graceful shutdown, without a traceback) or SIGTERM; exit 2
    with one line when the configuration or the address cannot be used."""
    try:
        return _serve_http_until_stopped(host, port)
    except KeyboardInterrupt:
        # uvicorn shuts down gracefully on SIGINT, then raises the signal again for its caller: this is the caller
        # (and a Ctrl-C during start-up lands here too).
        sys.stderr.write("seedance-mcp: stopped.\n")
        return 130


def _serve_http_until_stopped(host: str, port: int) -> int:
    settings = _settings()
    from seedance_mcp.http_server import CannotListen, serve_http
    from seedance_mcp.principals import TokensFileError

    token = settings.http_token.get_secret_value() if settings.http_token else None
    authenticated = token is not None or settings.tokens_file is not None
    if not authenticated and not _is_loopback(host):
        sys.stderr.write(
            f"seedance-mcp: refusing to listen on {host} without a token: set SEEDANCE_HTTP_TOKEN (or "
            "SEEDANCE_TOKENS_FILE), or bind to 127.0.0.1.\n"
        )
        return 2
    if not authenticated and (settings.public_hosts or settings.public_url):
        sys.stderr.write(
            "seedance-mcp: SEEDANCE_PUBLIC_HOSTS / SEEDANCE_PUBLIC_URL let remote clients in (through a proxy): "
            "set SEEDANCE_HTTP_TOKEN or SEEDANCE_TOKENS_FILE too.\n"
        )
        return 2
    try:
        serve_http(settings, host=host, port=port, token=token, announce=_announce)
    except CannotListen as exc:
        sys.stderr.write(f"seedance-mcp: {exc}\n")
        return 2
    except TokensFileError as exc:
        sys.stderr.write(f"seedance-mcp: invalid configuration: {exc}\n")
        return 2
    return 0


def _new_token(name: str, file: str | None) -> int:
    """A new token for `name`: added (its hash) to `file` with the token alone on stdout, or without a file the
    token on stderr and the entry (JSON) on stdout. The token itself is never stored: give it to the person once."""
    import json
    from pathlib import Path

    from seedance_mcp.principals import TokensFileError, add_principal, new_token, token_hash

    token = new_token()
    if file is None:
        print(f"token for {name} (give it to them; it is not stored anywhere): {token}", file=sys.stderr)
        print(json.dumps({name: {"token_sha256": token_hash(token)}}))
        print(
            "put that entry into the JSON object of SEEDANCE_TOKENS_FILE (or let `seedance-mcp token NAME --file "
            "FILE` add it), then restart the server",
            file=sys.stderr,
        )
        return 0
    try:
        add_principal(Path(file), name, token)
    except TokensFileError as exc:
        sys.stderr.write(f"seedance-mcp: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"seedance-mcp: cannot write {file}: {exc.strerror or exc}\n")
        return 2
    print(token)
    print(
        f"added {name} to {file} (only the token's hash is kept there). Give {name} the token above, once; restart "
        "the servers that read the file.",
        file=sys.stderr,
    )
    return 0


def _announce(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


# What `seedance-mcp sandbox` prints per preset: (label, SEEDANCE_PROVIDER value).
_SANDBOX_PRESETS = (
    ("Ark", "ark"),
    ("BytePlus", "byteplus"),
    ("kkiai", "kkiai"),
    ("gpt.ge", "gptge"),
    ("YEScale", "yescale"),
    ("OpenAI", "openai-compatible"),
    ("new-api", "new-api"),
    ("aiid", "aiid"),
)


def sandbox_lines(url: str, sandbox_as: str | None, model_map: dict[str, str]) -> list[str]:
    """The standalone sandbox's banner: its URL, then the SEEDANCE_PROVIDER / SEEDANCE_BASE_URL to point a server at
    it (only the chosen dialect's, when SEEDANCE_SANDBOX_AS names one), and the declared models it accepts."""
    from seedance_mcp.catalog import PRESETS  # the presets' titles and dialects, which a catalog file cannot change
    from seedance_mcp.runtime import _sandbox_paths  # pyright: ignore[reportPrivateUsage]

    lines = [f"Seedance sandbox on {url}"]
    chosen = [(label, name) for label, name in _SANDBOX_PRESETS if sandbox_as in (None, "sandbox", name)]
    if sandbox_as not in (None, "sandbox"):
        lines.append(f"  set up for the {PRESETS[sandbox_as].title} dialect (SEEDANCE_SANDBOX_AS={sandbox_as}):")
    for label, name in chosen:
        base, _ = _sandbox_paths(PRESETS[name], url)
        lines.append(f"  {label + ':':<10}SEEDANCE_PROVIDER={name} SEEDANCE_BASE_URL={base}")
    if model_map:
        declared = ",".join(f"{declared}={key}" for declared, key in model_map.items())
        lines.append(f"  declared models (SEEDANCE_MODEL_MAP): {declared}")
    lines.append("  any non-empty API key works; 'invalid-key' is refused. Ctrl+C stops.")
    return lines


def _sandbox_environment() -> Any:
    """The settings the standalone sandbox honours (SEEDANCE_SANDBOX_AS, SEEDANCE_MODEL_MAP, SEEDANCE_REGION,
    SEEDANCE_CATALOG_FILE), checked; a bad value ends the command with exit code 2."""
    import os

    from seedance_mcp.catalog import PRESET_NAMES

    sandbox_as = os.environ.get("SEEDANCE_SANDBOX_AS", "").strip() or None
    if sandbox_as is not None and sandbox_as not in PRESET_NAMES:
        sys.stderr.write(
            f"seedance-mcp: invalid configuration: SEEDANCE_SANDBOX_AS: {sandbox_as!r} is not a provider "
            f"(known: {', '.join(PRESET_NAMES)})\n"
        )
        raise SystemExit(2)
    return _settings(provider="sandbox")


def _run_sandbox(port: int, render_seconds: float) -> int:
    import anyio

    from seedance_mcp.logs import configure_logging
    from seedance_mcp.sandbox import SandboxServer, SandboxState

    settings = _sandbox_environment()
    configure_logging("WARNING")
    sandbox_as, model_map = settings.sandbox_as, dict(settings.model_map)

    async def serve() -> None:
        state = SandboxState(
            render_seconds=render_seconds,
            model_map=model_map,
            speaks=sandbox_as,
            catalog=settings.catalog,
            region=settings.preset.region,
        )
        server = SandboxServer(state, port=port)
        for line in sandbox_lines(server.url, sandbox_as, model_map):
            print(line, flush=True)
        await server.serve()
        await anyio.sleep_forever()

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve)
    return 0
