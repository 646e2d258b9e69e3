"""A user's catalog file (SEEDANCE_CATALOG_FILE) in the running server: a model it adds made on the sandbox, and a
malformed file stopping the real entry point at start-up. The file's checks themselves: tests/unit/test_catalog.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from seedance_mcp.app import create_app
from tests.conftest import make_settings, text_of
from tests.unit.test_catalog import NEW_MODEL, write

pytestmark = pytest.mark.anyio


async def test_a_model_the_users_file_adds_gets_validation_pricing_budgets_and_the_sandbox(tmp_path: Path) -> None:
    """A new id with its limits and price: listed with its price and source, validated, priced, within a daily
    budget, and made end to end by the sandbox playing BytePlus."""
    catalog_file = write(tmp_path, NEW_MODEL)
    settings = make_settings(
        tmp_path, sandbox_as="byteplus", catalog_file=catalog_file, daily_budget=20, sandbox_render_seconds=0.2
    )
    async with Client(create_app(settings)) as client:
        listed = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
        too_long = await client.call_tool("generate_video", {"prompt": "x", "model": "3.0", "duration": 21})
        dry = await client.call_tool("generate_video", {"prompt": "x", "model": "3.0", "dry_run": True})
        made = await client.call_tool("generate_video", {"prompt": "a new model", "model": "3.0", "duration": 5})
    models = {m["key"]: m for m in listed["models"]}
    assert listed["catalog"] == f"built-in + {catalog_file}"
    assert models["3.0"]["model_id"] == "dreamina-seedance-3-0-261201"
    assert (
        models["3.0"]["price"] == "USD/1M tokens: 9.5" and models["3.0"]["price_source"] == "our-invoice (2026-12-01)"
    )
    assert too_long.is_error is True and "`duration`" in text_of(too_long) and "4-20" in text_of(too_long)
    dry_data = dry.structured_content or {}
    assert dry_data["model"] == "dreamina-seedance-3-0-261201"
    assert dry_data["estimated_cost"] == round(108900 * 9.5 / 1e6, 4) and dry_data["currency"] == "USD"
    data = made.structured_content or {}
    assert data.get("status") == "succeeded", text_of(made)
    assert data["cost"] == round(108900 * 9.5 / 1e6, 4) and Path(data["video_path"]).is_file()


@pytest.mark.subprocess
def test_a_malformed_file_stops_the_server_at_start_up(tmp_path: Path) -> None:
    """The real entry point: exit code 2 and one line on stderr naming the variable, the file and the line; nothing
    on stdout (the protocol channel)."""
    catalog_file = write(tmp_path, NEW_MODEL.replace('modes = ["text", "first_frame"]', 'modes = ["dance"]'))
    env = {
        **os.environ,
        "SEEDANCE_CATALOG_FILE": str(catalog_file),
        "SEEDANCE_STATE_DIR": str(tmp_path / "state"),
        "SEEDANCE_OUTPUT_DIR": str(tmp_path / "videos"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "seedance_mcp"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and done.stdout == ""
    assert f"SEEDANCE_CATALOG_FILE {catalog_file}, line 8: models.\"3.0\".modes[0]: 'dance'" in done.stderr, done.stderr
