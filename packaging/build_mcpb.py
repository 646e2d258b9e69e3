"""Lay out seedance-mcp as a Claude Desktop extension (an MCP Bundle, `.mcpb`), ready for the official CLI's
`mcpb validate` and `mcpb pack` (packaging/check.sh runs both).

    python packaging/build_mcpb.py --wheel dist/seedance_mcp-0.1.0-py3-none-any.whl --out build/mcpb
    python packaging/build_mcpb.py --pypi --out build/mcpb      # once the version is on PyPI: no wheel inside

Run it with a Python that has seedance-mcp installed (the wheel's, or the checkout's venv): the provider choices,
the settings the extension sets and the tool list are read from the package itself, so the manifest cannot drift.

The bundle is manifest 0.4, `server.type: "uv"`: it ships a small pyproject.toml whose one dependency is
seedance-mcp (resolved from the wheel inside the bundle, or from PyPI), and the host (Claude Desktop) provides uv and
Python and installs the compiled dependencies (pydantic-core, PyAV, Pillow) for the user's own platform.
`mcp_config` runs the same thing through `uv run` for hosts that follow it literally (the CLI requires it).
The user's settings: the provider (MCPB has no enum type, so a string whose description lists the choices; the
server refuses any other value at start-up), the API key (sensitive: masked, kept in the OS keychain), where videos
are saved, and optionally the default model and a gateway's base URL.
"""

# ruff: noqa: T201  (a command-line tool: it talks to a person on stderr)
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any, get_args

MANIFEST_VERSION = "0.4"
ENTRY_POINT = "server/main.py"

USER_SETTINGS: dict[str, str] = {
    "provider": "SEEDANCE_PROVIDER",
    "api_key": "SEEDANCE_API_KEY",
    "output_dir": "SEEDANCE_OUTPUT_DIR",
    "model": "SEEDANCE_MODEL",
    "base_url": "SEEDANCE_BASE_URL",
}
"""Each user_config key and the server setting it becomes (as an environment variable of the server process)."""

LAUNCHER = '''"""The bundle's entry point: the seedance-mcp stdio server (stdout is the JSON-RPC channel).

A host that has no value for an optional setting (and no default) passes its placeholder on literally, e.g.
SEEDANCE_MODEL="${user_config.model}" (the MCPB reference implementation does): such a variable counts as unset.
"""

import os
import re
import sys

for name in [name for name in os.environ if name.startswith("SEEDANCE_") or name == "ARK_API_KEY"]:
    if re.fullmatch(r"\\$\\{user_config\\.[^}]*\\}", os.environ[name].strip()):
        del os.environ[name]

from seedance_mcp.__main__ import main  # noqa: E402  (after the environment is cleaned)

sys.exit(main([]))
'''


def provider_names() -> list[str]:
    from seedance_mcp.config import ProviderName

    return list(get_args(ProviderName))


def tool_summaries() -> list[dict[str, str]]:
    """The server's tools, each with the first sentence of its description, read from a server built in memory."""
    import tempfile

    import anyio
    from mcp import Client

    from seedance_mcp.app import create_app
    from seedance_mcp.config import Settings

    async def listed() -> list[dict[str, str]]:
        with tempfile.TemporaryDirectory() as state:
            settings = Settings(provider="sandbox", state_dir=Path(state), output_dir=Path(state) / "videos")
            async with Client(create_app(settings)) as client:
                tools = (await client.list_tools()).tools
        return [{"name": tool.name, "description": _first_sentence(tool.description or tool.name)} for tool in tools]

    return anyio.run(listed)


def _first_sentence(text: str) -> str:
    sentence = " ".join(text.split()).split(". ", 1)[0].rstrip(".")
    return sentence if len(sentence) <= 160 else sentence[:159] + "…"


def user_config(providers: list[str]) -> dict[str, dict[str, Any]]:
    return {
        "provider": {
            "type": "string",  # no enum/select type in MCPB 0.1-0.4 (modelcontextprotocol/mcpb#165)
            "title": "Provider",
            "description": "Where videos are made, one of: "
            + ", ".join(providers)
            + ". ark = Volcengine Ark (China), byteplus = BytePlus ModelArk; sandbox is free and offline (no key).",
            "default": "ark",
            "required": True,
        },
        "api_key": {
            "type": "string",
            "title": "API key",
            "description": "The provider's API key (Ark: ARK_API_KEY). Leave it empty for the sandbox.",
            "sensitive": True,
            "required": False,
        },
        "output_dir": {
            # No default: the server's own is the platform's (~/Movies/seedance-mcp on macOS, ~/Videos/… elsewhere),
            # and hosts differ on expanding ${HOME} inside a default.
            "type": "directory",
            "title": "Save videos to",
            "description": "The folder finished MP4s are saved in. Empty: Movies/seedance-mcp (macOS) or "
            "Videos/seedance-mcp in your home folder.",
            "required": False,
        },
        "model": {
            "type": "string",
            "title": "Default model",
            "description": "A model id or short key (2.0-mini, 2.0, 2.5, …); empty: the provider's default.",
            "required": False,
        },
        "base_url": {
            "type": "string",
            "title": "Gateway base URL",
            "description": "Only for gateways (openai-compatible, new-api): their base URL. Empty: the provider's.",
            "required": False,
        },
    }


def manifest(version: str, providers: list[str], tools: list[dict[str, str]]) -> dict[str, Any]:
    env = {variable: f"${{user_config.{key}}}" for key, variable in USER_SETTINGS.items()}
    return {
        "$schema": "https://raw.githubusercontent.com/modelcontextprotocol/mcpb/main/schemas/mcpb-manifest-v0.4.schema.json",
        "manifest_version": MANIFEST_VERSION,
        "name": "seedance-mcp",
        "display_name": "Seedance video generation",
        "version": version,
        "description": "Make videos with ByteDance Seedance (Ark, BytePlus and gateways): checked before paying, "
        "with progress, saved as MP4.",
        "long_description": "Every request is checked against the model's limits and price before anything is paid "
        "for; jobs are written to a local journal first, so a retry never pays twice and a video is saved even if "
        "the conversation moves on. The free sandbox provider runs everything offline, without a key.",
        "author": {"name": "seedance-mcp developers"},
        "repository": {"type": "git", "url": "https://github.com/seedance-mcp/seedance-mcp"},
        "homepage": "https://github.com/seedance-mcp/seedance-mcp",
        "documentation": "https://github.com/seedance-mcp/seedance-mcp#readme",
        "support": "https://github.com/seedance-mcp/seedance-mcp/issues",
        "icon": "icon.png",
        "license": "MIT",
        "keywords": ["video", "seedance", "bytedance", "ark", "byteplus"],
        "server": {
            "type": "uv",
            "entry_point": ENTRY_POINT,
            "mcp_config": {
                "command": "uv",
                "args": [
                    "run",
                    "--directory",
                    "${__dirname}",
                    "--no-dev",
                    "--quiet",
                    "python",
                    "${__dirname}/" + ENTRY_POINT,
                ],
                "env": env,
            },
        },
        "tools": tools,
        "tools_generated": False,
        "user_config": user_config(providers),
        "compatibility": {"platforms": ["darwin", "win32", "linux"], "runtimes": {"python": ">=3.11"}},
    }


def bundle_pyproject(version: str, wheel: Path | None) -> str:
    source = ""
    if wheel is not None:
        source = f'\n[tool.uv.sources]\nseedance-mcp = {{ path = "wheels/{wheel.name}" }}\n'
    return f"""[project]
name = "seedance-mcp-bundle"
version = "{version}"
requires-python = ">=3.11"
dependencies = ["seedance-mcp=={version}"]

[tool.uv]
package = false  # a runner for the dependency, not a package of its own
{source}"""


def icon_png(size: int = 512) -> bytes:
    """The extension's icon: a play triangle on a rounded square (drawn with Pillow, a dependency already)."""
    import io

    from PIL import Image, ImageDraw

    scale = 4  # drawn large, then scaled down: smooth edges
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=(24, 24, 27, 255))
    inset = big // 8
    draw.rounded_rectangle(
        (inset, inset + big // 10, big - inset, big - inset - big // 10), radius=big // 16, fill=(37, 99, 235, 255)
    )
    third = big // 3
    tip = (big - third + big // 12, big // 2)
    draw.polygon([(third + big // 24, third), (third + big // 24, big - third), tip], fill=(250, 250, 250, 255))
    out = io.BytesIO()
    image.resize((size, size), Image.Resampling.LANCZOS).save(out, format="PNG", optimize=True)  # pyright: ignore[reportUnknownMemberType]
    return out.getvalue()


def build(out: Path, wheel: Path | None) -> dict[str, Any]:
    """Lay out the bundle in `out` (replaced); the manifest written."""
    from seedance_mcp import __version__

    version = __version__
    if wheel is not None:
        wheel_version = wheel.name.split("-")[1]
        if wheel_version != version:
            raise SystemExit(f"the wheel is {wheel_version} but this Python's seedance-mcp is {version}")
    data = manifest(version, provider_names(), tool_summaries())
    if out.exists():
        shutil.rmtree(out)
    (out / "server").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "icon.png").write_bytes(icon_png())
    (out / ENTRY_POINT).write_text(LAUNCHER, encoding="utf-8")
    (out / "pyproject.toml").write_text(bundle_pyproject(version, wheel), encoding="utf-8")
    (out / ".mcpbignore").write_text(".venv/\nuv.lock\n__pycache__/\n*.pyc\n", encoding="utf-8")
    if wheel is not None:
        (out / "wheels").mkdir()
        shutil.copy2(wheel, out / "wheels" / wheel.name)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", type=Path, help="ship this seedance-mcp wheel inside the bundle")
    source.add_argument("--pypi", action="store_true", help="resolve seedance-mcp from PyPI (once published)")
    parser.add_argument("--out", type=Path, required=True, help="the bundle directory (replaced)")
    args = parser.parse_args(argv)
    data = build(args.out, args.wheel.resolve() if args.wheel else None)
    print(f"{data['name']} {data['version']} laid out in {args.out} ({len(data['tools'])} tools)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
