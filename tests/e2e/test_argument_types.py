"""Arguments of the wrong JSON type (issue 19: a client that sends `model` as the number 2.0) get a plain tool error
naming the argument and the form to use, never pydantic's report; nothing reaches the provider; the server goes
on answering."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from seedance_mcp.app import create_app
from seedance_mcp.config import Settings
from seedance_mcp.requests import explain_invalid_arguments
from seedance_mcp.sandbox import SandboxServer
from tests.conftest import make_settings, sandbox_stats, text_of
from tests.fakes.stdio_helpers import server_env, stdio_params

pytestmark = pytest.mark.anyio

PYDANTIC_WORDS = ("validation error", "errors.pydantic.dev", "input_value", "type=", "Arguments\n")

MISMATCHES: list[tuple[dict[str, Any], str, str]] = [
    ({"model": 2.0}, "`model`", 'the number 2.0; give a string (in quotes). A model key or id, e.g. "2.0"'),
    ({"model": 1.5}, "`model`", "the keys here: "),
    ({"duration": "5"}, "`duration`", 'the string "5"; give a whole number (a JSON integer, not in quotes)'),
    ({"duration": 5.5}, "`duration`", "the number 5.5; give a whole number"),
    ({"seed": True}, "`seed`", "the boolean true; give a whole number"),
    ({"generate_audio": "yes"}, "`generate_audio`", "give true or false (a JSON boolean, not in quotes)"),
    ({"watermark": 1}, "`watermark`", "the number 1; give true or false"),
    ({"reference_images": "https://e.com/a.png"}, "`reference_images`", "give a list of strings"),
    ({"reference_images": [3]}, "`reference_images[0]`", "the number 3; give a string"),
    ({"ratio": "2:1"}, "`ratio`", 'not one of the allowed values ("16:9", '),
    ({"wait": "false"}, "`wait`", "give true or false"),
]


def assert_plain(text: str) -> None:
    for word in PYDANTIC_WORDS:
        assert word not in text, text
    assert text.endswith("Nothing was sent to the provider and nothing was charged."), text


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_each_type_mismatch_of_generate_video_names_the_argument_and_sends_nothing(
    tmp_path: Path, sandbox: SandboxServer, mode: str
) -> None:
    settings = make_settings(tmp_path, provider="ark", base_url=sandbox.url + "/api/v3", api_key="sk-x")
    with anyio.fail_after(30):
        async with Client(create_app(settings), mode=mode) as client:
            for given, argument, expected in MISMATCHES:
                result = await client.call_tool("generate_video", {"prompt": "a kite", **given})
                text = text_of(result)
                assert result.is_error, given
                assert text.startswith(f"Invalid argument {argument}: "), text
                assert expected in text, text
                assert_plain(text)
            alive = await client.call_tool("generate_video", {"prompt": "a kite", "model": "2.0", "dry_run": True})
    assert alive.is_error is False, text_of(alive)
    assert (await sandbox_stats(sandbox))["creates"] == 0


async def test_the_model_as_a_number_names_the_keys_of_this_provider(settings: Settings) -> None:
    async with Client(create_app(settings)) as client:
        text = text_of(await client.call_tool("generate_video", {"prompt": "a kite", "model": 2.0}))
    assert "2.0-mini (default)" in text and "2.5" in text, text


async def test_other_tools_get_the_same_plain_words(settings: Settings) -> None:
    async with Client(create_app(settings)) as client:
        too_many = text_of(await client.call_tool("list_tasks", {"limit": 500}))
        number = text_of(await client.call_tool("get_task_status", {"task_id": 7}))
    assert too_many.startswith("Invalid argument `limit`: Input should be less than or equal to 200 (got the number")
    assert number.startswith("Invalid argument `task_id`: got the number 7; give a string"), number
    for text in (too_many, number):
        assert_plain(text)


def test_several_bad_arguments_are_all_named_once() -> None:
    errors = [
        {"type": "string_type", "loc": ("model",), "input": 2.0, "msg": "Input should be a valid string"},
        {"type": "missing", "loc": ("prompt",), "input": {}, "msg": "Field required"},
    ]
    text = explain_invalid_arguments(errors, {"model": "A model key"})
    assert text == (
        "Invalid argument `model`: got the number 2.0; give a string (in quotes). A model key. "
        "Invalid argument `prompt`: it is required. Nothing was sent to the provider and nothing was charged."
    )


@pytest.mark.subprocess
async def test_the_model_as_a_number_over_stdio(tmp_path: Path) -> None:
    env = server_env(tmp_path, SEEDANCE_PROVIDER="sandbox")
    with anyio.fail_after(30):
        async with Client(stdio_params(env), mode="legacy") as client:
            bad = await client.call_tool("generate_video", {"prompt": "a kite", "model": 2.0})
            listed = await client.call_tool("list_tasks", {})
    assert bad.is_error and text_of(bad).startswith("Invalid argument `model`: got the number 2.0"), text_of(bad)
    assert_plain(text_of(bad))
    assert (listed.structured_content or {})["tasks"] == []
