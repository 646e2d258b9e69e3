"""Launch seedance-mcp as a real subprocess over stdio, as an MCP host does."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client

ROOT = Path(__file__).resolve().parents[2]


def server_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment: nothing SEEDANCE_* (nor a proxy) from the developer's shell, the package importable."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SEEDANCE_") and k != "ARK_API_KEY" and not k.lower().endswith("_proxy")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "server"), env.get("PYTHONPATH")]))
    env.update(
        {
            "SEEDANCE_STATE_DIR": str(tmp_path / "state"),
            "SEEDANCE_OUTPUT_DIR": str(tmp_path / "videos"),
            "SEEDANCE_POLL_INTERVAL": "0.1",
            "SEEDANCE_POLL_INTERVAL_MAX": "0.3",
            "SEEDANCE_SANDBOX_RENDER_SECONDS": "0.8",
            "SEEDANCE_RETRY_SCALE": "0.01",
            "SEEDANCE_LOG_LEVEL": "DEBUG",
        }
    )
    env.update(variables)
    return env


def stdio_params(env: dict[str, str], *args: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=["-m", "seedance_mcp", *args], env=env)


def stdio_transport(env: dict[str, str], errlog: TextIO) -> Any:
    return stdio_client(stdio_params(env), errlog=errlog)


def server_pids(marker: str) -> list[int]:
    """Pids of seedance-mcp processes whose environment carries `marker` (a test's state dir), to kill them."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"seedance_mcp" in cmdline and marker.encode() in environ and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found
