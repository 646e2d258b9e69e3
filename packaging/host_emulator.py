"""Install a `.mcpb` the way a host does and use it: unzip it, resolve its `mcp_config` with the MCPB reference library
(packaging/mcpb_host_config.mjs), start the command it names (`uv run …`: uv installs the dependencies, as the host
would) and speak MCP to it over stdio: list the tools the manifest promises, then make a video on the sandbox.

    python packaging/host_emulator.py --mcpb-lib NPM_PREFIX seedance-mcp-0.1.0.mcpb

Settings the user would type are left out on purpose except the provider and the folder: the reference library
passes an unset optional value on as its literal `${user_config.KEY}` placeholder, which the bundle must survive.
Needs node, and uv on the PATH. Exit code 0 when everything answered as promised.
"""

# ruff: noqa: T201  (a command-line check: it reports on stdout and stderr)
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def resolved_config(lib: Path, extension: Path, settings: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        ["node", str(HERE / "mcpb_host_config.mjs"), str(lib), str(extension), json.dumps(settings)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(done.stdout)


def host_environment(config_env: dict[str, str], home: Path) -> dict[str, str]:
    """What a desktop host passes: a small environment of its own (never the developer's SEEDANCE_* settings), plus
    the manifest's variables. HOME is a scratch one (the journal goes there), uv's cache the real one (fast)."""
    kept = ("PATH", "LANG", "LC_ALL", "TMPDIR", "UV_PYTHON", "UV_INDEX_URL", "SSL_CERT_FILE", "SYSTEMROOT")
    env = {name: os.environ[name] for name in kept if name in os.environ}
    env["UV_CACHE_DIR"] = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
    env["HOME"] = str(home)
    env.update(config_env)
    return env


async def use(
    config: dict[str, Any], manifest: dict[str, Any], home: Path, errlog: Path
) -> tuple[list[str], dict[str, Any]]:
    """Start the server as configured and check its answers: the problems found, and the video's result."""
    import anyio
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    problems: list[str] = []
    params = StdioServerParameters(
        command=config["command"], args=config.get("args", []), env=host_environment(config.get("env", {}), home)
    )
    with errlog.open("w") as stderr, anyio.fail_after(900):
        async with Client(stdio_client(params, errlog=stderr), read_timeout_seconds=300) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            promised = [tool["name"] for tool in manifest.get("tools", [])]
            print(f"tools: {', '.join(tools)}")
            if tools != promised:
                problems.append(f"the server lists {tools}, the manifest promises {promised}")
            models = await client.call_tool("list_models", {})
            listed: dict[str, Any] = models.structured_content or {}
            provider = listed.get("provider")
            print(f"list_models: provider {provider}, error {models.is_error}")
            if models.is_error or provider != "sandbox":
                problems.append(f"list_models answered {models.content!r}")
            made = await client.call_tool("generate_video", {"prompt": "a paper boat on a pond", "duration": 5})
    data: dict[str, Any] = made.structured_content or {}
    print(f"generate_video: {data.get('status')} {data.get('video_path')}")
    if made.is_error or data.get("status") != "succeeded":
        problems.append(f"generate_video answered {made.content!r}")
    return problems, data


def video_problems(data: dict[str, Any], output_dir: Path) -> list[str]:
    """Whether the video was saved where the user's setting says, as an MP4."""
    path = Path(str(data.get("video_path") or ""))
    if not path.is_file():
        return [f"no video file at {path}"]
    if path.parent != output_dir:
        return [f"the video was saved in {path.parent}, not in the folder set ({output_dir})"]
    if path.read_bytes()[4:8] != b"ftyp":
        return [f"{path} is not an MP4"]
    return []


def main(argv: list[str] | None = None) -> int:
    import anyio

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("bundle", type=Path, help="the .mcpb file")
    parser.add_argument("--mcpb-lib", type=Path, required=True, help="npm prefix with @anthropic-ai/mcpb installed")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mcpb-host-") as scratch:
        root = Path(scratch)
        extension = root / "extension"
        with zipfile.ZipFile(args.bundle) as bundle:
            bundle.extractall(extension)
        manifest = json.loads((extension / "manifest.json").read_text(encoding="utf-8"))
        output_dir = (root / "videos").resolve()
        settings = {"provider": "sandbox", "output_dir": str(output_dir)}
        config = resolved_config(args.mcpb_lib.resolve(), extension, settings)
        print(f"spawn: {config['command']} {' '.join(config.get('args', []))}")
        print(f"env: {json.dumps(config.get('env', {}))}")
        errlog = root / "server-stderr.log"
        home = root / "home"
        home.mkdir()
        try:
            problems, video = anyio.run(use, config, manifest, home, errlog)
            problems += video_problems(video, output_dir) if not problems else []
        except Exception as exc:
            problems = [f"{type(exc).__name__}: {exc}"]
        if problems:
            print("the bundle does not work as a host would run it:", *problems, sep="\n  ", file=sys.stderr)
            print("server stderr:\n" + errlog.read_text(errors="replace")[-4000:], file=sys.stderr)
            return 1
    print("the bundle works as a host runs it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
