"""README.md stays true: every tool and every setting is documented, and its commands are the ones CI runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()

pytestmark = pytest.mark.anyio


async def test_every_tool_is_in_the_readme_tool_table(settings: Settings) -> None:
    async with Client(create_app(settings)) as client:
        names = [tool.name for tool in (await client.list_tools()).tools]
    for name in names:
        assert f"| `{name}` |" in README, name


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    for name in Settings.model_fields:
        not_seedance_variables = (
            "retry_scale",
            "sandbox_port",
            "startup_delay",
            "catalog",
            "hosted_uploads",
            "network",
        )
        if name in not_seedance_variables:  # not user settings, or not read from a SEEDANCE_ variable
            continue
        assert f"SEEDANCE_{name.upper()}" in README, name


def test_the_readme_test_command_is_what_ci_runs() -> None:
    assert "bash .ci/run" in README
    assert (ROOT / ".ci" / "run").is_file()
    assert "seedance-mcp demo" in README
