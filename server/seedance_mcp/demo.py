"""`seedance-mcp demo "a prompt"`: the whole product on the free sandbox, driven by a real MCP client over stdio.

It launches `seedance-mcp` as a subprocess exactly as Claude Desktop or Cursor would, calls generate_video, shows
the progress notifications as they arrive (a bar, the percent and, once the job renders, an ETA from the progress
rate), and prints what a newcomer wants to see: the saved MP4, its thumbnail, its (simulated) cost, and the command
to give an MCP client.
`--open` also opens the video in the system's player. This is a command-line tool: it prints to stdout.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast

import anyio

DEMO_RENDER_SECONDS = "8"
"""How long the demo's sandbox render takes, unless SEEDANCE_SANDBOX_RENDER_SECONDS says otherwise."""
OPENER_WAIT_SECONDS = 5.0


@dataclass
class DemoResult:
    data: dict[str, Any]
    preview_jpeg: bytes | None = None
    """The result's image block: the preview JPEG the server made of the video."""


def run_demo(prompt: str, output_dir: str | None, *, open_video: bool = False) -> int:
    outcome = anyio.run(_demo, prompt, Path(output_dir or "seedance-demo").resolve())
    if outcome is None:
        return 1
    data = outcome.data
    print(f"status: {data.get('status')} · task {data.get('task_id')} · {data.get('elapsed_seconds')} s")
    path = data.get("video_path")
    if not path or not Path(path).is_file():
        print(f"no video was saved: {data.get('next_step')}", file=sys.stderr)
        return 1
    video = Path(path)
    print()
    print(f"Video:     {video}")
    print(f"           ({video.stat().st_size:,} bytes; {_sample_note(data)})")
    thumbnail = _thumbnail(video, outcome.preview_jpeg)
    if thumbnail is not None:
        print(f"Thumbnail: {thumbnail}")
    print(f"Cost:      {cost_line(data)}")
    if open_video:
        print(f"Opening:   {open_in_player(video)}")
    print()
    for line in client_lines():
        print(line)
    return 0


def _sample_note(data: dict[str, Any]) -> str:
    asked = " ".join(
        part
        for part in (
            f"{data['duration']:g} s" if isinstance(data.get("duration"), int | float) else None,
            data.get("resolution"),
        )
        if part
    )
    from seedance_mcp.sandbox.clips import clip_size

    width, height = clip_size(str(data.get("ratio") or "16:9"))
    stands_in = f"a {asked} render" if asked else "a render"
    return f"the sandbox's small {width}x{height} clip stands in for {stands_in}"


def cost_line(data: dict[str, Any]) -> str:
    """`5.01 CNY (simulated: …)`: the result's cost, said to be simulated when it is."""
    amount = data.get("cost") if data.get("cost") is not None else data.get("estimated_cost")
    tokens = data.get("usage_tokens") or data.get("estimated_tokens")
    money = f"{amount:.2f} {data.get('currency') or ''}".strip() if isinstance(amount, int | float) else "unknown"
    what = f"{money} for {tokens:,} output tokens" if isinstance(tokens, int) else money
    if data.get("simulated"):
        return f"{what}, simulated: the sandbox bills nothing (the same video's list price on Ark)"
    return what


def _thumbnail(video: Path, preview_jpeg: bytes | None) -> Path | None:
    """The preview JPEG's path: the one the server caches next to the video, else the result's image saved there."""
    from seedance_mcp.media.previews import PREVIEW_SUFFIX

    cached = video.with_name(video.name + PREVIEW_SUFFIX)
    if cached.is_file():
        return cached
    if preview_jpeg is None:
        return None
    try:
        cached.write_bytes(preview_jpeg)
    except OSError:
        return None
    return cached


def open_in_player(video: Path) -> str:
    """Open the video with the system's player, best effort: what was done, never an exception."""
    try:
        if sys.platform == "win32":
            os.startfile(video)
            return "sent to the default player"
        opener = shutil.which("open" if sys.platform == "darwin" else "xdg-open")
        if opener is None:
            return "no opener found (xdg-open / open); open the file yourself"
        process = subprocess.Popen(
            [opener, str(video)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            process.wait(OPENER_WAIT_SECONDS)  # xdg-open and open hand over to the player and return
        except subprocess.TimeoutExpired:
            return f"sent to {Path(opener).name}"
        if process.returncode:
            return f"{Path(opener).name} failed (exit code {process.returncode}); open the file yourself"
        return f"sent to {Path(opener).name}"
    except OSError as exc:
        return f"could not open it ({exc}); open the file yourself"


def client_command() -> str:
    """The command an MCP client should start, as one shell-quoted string (see `client_argv`)."""
    import shlex

    return shlex.join(client_argv())


def client_argv(
    executable: Path | None = None, prefix: Path | None = None, direct_url: dict[str, Any] | None = None
) -> list[str]:
    """The command an MCP client should start for this installation, which must outlive this process.

    Normally the absolute `seedance-mcp` next to this Python (as in a venv), which clients can run without the venv
    on their PATH. When this Python lives in a cache (`uvx --from <clone>` runs from uv's cache, which uv may clean
    at any time) or in a uv tool environment, the `uvx` command that makes it again instead, from where it was
    installed (PEP 610 `direct_url.json`: a directory, an archive, a git URL; nothing: the package index)."""
    executable = Path(sys.executable).absolute() if executable is None else executable
    prefix = Path(sys.prefix) if prefix is None else prefix
    if in_uv_cache_or_tool_dir(prefix):
        return uvx_argv(installed_from() if direct_url is None else direct_url)
    scripts = executable.parent  # not resolved: a venv's python is a link out of the venv
    found = shutil.which("seedance-mcp", path=str(scripts)) or shutil.which("seedance-mcp")
    if found is not None:
        return [str(Path(found).absolute())]
    return [str(executable), "-m", "seedance_mcp"]


def in_uv_cache_or_tool_dir(prefix: Path) -> bool:
    """Whether the environment at `prefix` is disposable or managed by uv: inside a tagged cache directory (uv's
    cache, where `uvx` builds its environments, carries a CACHEDIR.TAG) or a `uv tool` environment (uv-receipt.toml)."""
    if (prefix / "uv-receipt.toml").is_file():
        return True
    return any((directory / "CACHEDIR.TAG").is_file() for directory in (prefix, *prefix.parents))


def installed_from() -> dict[str, Any]:
    """This distribution's PEP 610 `direct_url.json` ({} when it came from a package index)."""
    from importlib import metadata

    try:
        text = metadata.distribution("seedance-mcp").read_text("direct_url.json")
        data: Any = json.loads(text) if text else {}
    except (metadata.PackageNotFoundError, ValueError):
        return {}
    return cast("dict[str, Any]", data) if isinstance(data, dict) else {}


def uvx_argv(direct_url: dict[str, Any]) -> list[str]:
    """`uvx [--from SOURCE] seedance-mcp` for a PEP 610 record (an absolute uvx where one is on the PATH, since GUI
    clients often start servers without the user's PATH)."""
    from urllib.parse import unquote, urlsplit

    uvx = shutil.which("uvx")
    command = [str(Path(uvx).absolute()) if uvx else "uvx"]
    url = str(direct_url.get("url") or "")
    vcs = direct_url.get("vcs_info")
    if isinstance(vcs, dict):
        info = cast("dict[str, Any]", vcs)
        revision = info.get("requested_revision") or info.get("commit_id")
        source = f"{info.get('vcs', 'git')}+{url}" + (f"@{revision}" if revision else "")
    elif url.startswith("file://"):
        source = str(Path(unquote(urlsplit(url).path)))
    else:
        source = url
    return [*command, *(["--from", source] if source else []), "seedance-mcp"]


def client_lines() -> list[str]:
    """How to use this installation from an MCP client: the command and ready snippets."""
    argv = client_argv()
    command = client_command()
    server: dict[str, Any] = {"command": argv[0]}
    if argv[1:]:
        server["args"] = argv[1:]
    server["env"] = {"SEEDANCE_PROVIDER": "sandbox"}
    snippet = json.dumps({"mcpServers": {"seedance": server}}, indent=2)
    return [
        f"To use it from Claude Desktop / Cursor / Claude Code, use this command: {command}",
        f"  Claude Code:    claude mcp add seedance --env SEEDANCE_PROVIDER=sandbox -- {command}",
        "  Claude Desktop (claude_desktop_config.json) and Cursor (~/.cursor/mcp.json):",
        *("    " + line for line in snippet.splitlines()),
        '  For real videos, set "SEEDANCE_PROVIDER": "ark" and "SEEDANCE_API_KEY": "<your key>" instead.',
    ]


WAITING_STATES = ("queued", "submitting")
"""States whose progress is a placeholder that creeps with time (the server's estimate of a queue): no basis for an
ETA, which would extrapolate that creep into minutes for a job about to start."""
ETA_MIN_SECONDS = 1.0
"""How long rendering must have been seen before its progress rate says anything."""


@dataclass
class ProgressBar:
    """One line per notification (rewritten in place on a terminal): bar, percent, and an ETA once there is a basis
    for one: the progress rate seen while the job renders (the server's messages start with the job's state)."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    width: int = 30
    clock: Any = time.monotonic
    basis: tuple[float, float] | None = None
    """(time, percent) of the first notification of the render itself; None while the job waits."""
    drawn: bool = False

    def eta(self, progress: float, now: float) -> str:
        if self.basis is None or progress >= 100:
            return ""
        seconds, start = now - self.basis[0], self.basis[1]
        if seconds < ETA_MIN_SECONDS or progress <= start:
            return ""
        rate = (progress - start) / seconds
        return f"ETA ~{max(0.0, (100 - progress) / rate):.0f} s"

    def show(self, progress: float, total: float | None, message: str | None) -> None:
        now = self.clock()
        percent = 100 * progress / (total or 100)
        state = (message or "").split(" · ", 1)[0].strip()
        if self.basis is None and state not in WAITING_STATES:
            self.basis = (now, percent)
        filled = min(self.width, int(self.width * percent / 100))
        line = f"  [{'#' * filled}{'.' * (self.width - filled)}] {percent:5.1f}%  {self.eta(percent, now):<11} "
        line += message or ""
        if self.out.isatty():
            self.out.write(f"\r{line:<100}")
            self.drawn = True
        else:
            self.out.write(line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.drawn:
            self.out.write("\n")
            self.out.flush()


async def _demo(prompt: str, output_dir: Path) -> DemoResult | None:
    from mcp import Client, StdioServerParameters

    with tempfile.TemporaryDirectory(prefix="seedance-demo-state-") as state_dir:
        env = {
            **os.environ,
            "SEEDANCE_PROVIDER": "sandbox",
            "SEEDANCE_OUTPUT_DIR": str(output_dir),
            "SEEDANCE_STATE_DIR": state_dir,
            "SEEDANCE_SANDBOX_RENDER_SECONDS": os.environ.get("SEEDANCE_SANDBOX_RENDER_SECONDS", DEMO_RENDER_SECONDS),
            "SEEDANCE_POLL_INTERVAL": "1",
            "SEEDANCE_LOG_LEVEL": "WARNING",
        }
        env.pop("SEEDANCE_BASE_URL", None)
        params = StdioServerParameters(command=sys.executable, args=["-m", "seedance_mcp"], env=env)
        print("Starting seedance-mcp on the embedded sandbox (no key, no cost) through an MCP stdio client…")
        started = time.monotonic()
        bar = ProgressBar()
        async with Client(params, read_timeout_seconds=120) as client:
            tools = await client.list_tools()
            print(f"Connected in {time.monotonic() - started:.1f} s; tools: {', '.join(t.name for t in tools.tools)}")
            # The preset's default model: every preset's default has a list price, so the demo shows the cost.
            print(f'generate_video(prompt="{prompt}", duration=5)')

            async def show(progress: float, total: float | None, message: str | None) -> None:
                bar.show(progress, total, message)

            arguments = {"prompt": prompt, "duration": 5}
            result = await client.call_tool("generate_video", arguments, progress_callback=show)
        bar.done()
        if result.is_error:
            text = " ".join(getattr(block, "text", "") for block in result.content)
            print(f"generate_video failed: {text}", file=sys.stderr)
            return None
        preview: bytes | None = None
        for block in result.content:
            if getattr(block, "type", None) == "image" and getattr(block, "mime_type", None) == "image/jpeg":
                preview = base64.b64decode(getattr(block, "data", ""))
        return DemoResult(result.structured_content or {}, preview)
