"""The catalog as data: the packaged file against its schema, and a user's file (SEEDANCE_CATALOG_FILE) that adds or
changes models, checked at start-up with errors that name the line, and honoured everywhere a built-in model is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from mcp import Client
from pydantic import ValidationError

from seedance_mcp import catalog_loader
from seedance_mcp.app import create_app
from seedance_mcp.catalog import PRESET_NAMES, builtin_catalog
from seedance_mcp.catalog_loader import (
    DATA_FILE,
    PARSED_FILE,
    builtin_data,
    line_of,
    parsed_cache,
    read_packaged,
    schema,
)
from seedance_mcp.config import load_settings
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

NEW_MODEL = """\
[sources.our-invoice]
what = "Our BytePlus invoice for the preview model"
date = "2026-12-01"

[models."3.0"]
name = "Seedance 3.0 (preview)"
ids = { byteplus = "dreamina-seedance-3-0-261201" }
modes = ["text", "first_frame"]
resolutions = ["480p", "720p"]
default_resolution = "720p"
duration = { min = 4, max = 20, auto = true }
audio = true
sizes = "v15"
typical_render_seconds = 100
source = "our-invoice"

[models."3.0".regions.byteplus]
source = "our-invoice"
prices = [{ per_million = 9.5, source = "our-invoice" }]
"""


def write(tmp_path: Path, text: str, name: str = "catalog.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_built_in_file_validates_against_its_schema() -> None:
    """The packaged data file, as the schema a user's file is checked against says it must be."""
    Draft202012Validator.check_schema(schema())
    errors = sorted(Draft202012Validator(schema()).iter_errors(builtin_data()), key=str)
    assert errors == []
    catalog = builtin_catalog()
    assert set(catalog.presets) == set(PRESET_NAMES)
    # Every fact names a source with a date: models, region entries and prices.
    assert all(spec.source for spec in catalog.models.values())
    for offered in catalog.by_region.values():
        for spec in offered.values():
            assert all(row.source and "(20" in row.source for row in spec.prices), spec.key


def test_the_packaged_parse_cache_is_the_toml_parsed_and_a_stale_one_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """catalog.parsed.json spares the stdio start-up the TOML parser; it must be catalog.toml's parse, and one whose
    hash does not match (someone edited the TOML and did not refresh it) is never used."""
    current = parsed_cache(read_packaged(DATA_FILE))
    assert json.loads(read_packaged(PARSED_FILE)) == current, (
        "data/catalog.parsed.json is stale: run "
        "`python -c 'from seedance_mcp.catalog_loader import write_parsed_cache; write_parsed_cache()'`"
    )
    stale = {**current, "data": {**current["data"], "date": "1999-01-01"}, "sha256": "0" * 64}
    real = catalog_loader.read_packaged

    def read(name: str) -> str:
        return json.dumps(stale) if name == PARSED_FILE else real(name)

    monkeypatch.setattr(catalog_loader, "read_packaged", read)
    assert catalog_loader._builtin_data.__wrapped__()["date"] == current["data"]["date"]


def test_the_schema_refuses_what_the_loader_would_misread() -> None:
    """The schema is real: an unknown field, a bad resolution and a missing source are each an error."""
    validator = Draft202012Validator(schema())
    data = builtin_data()
    data["models"]["2.5"]["resolution"] = "720p"  # a typo of `resolutions`
    data["models"]["2.0"]["resolutions"] = ["720p", "8k"]
    del data["models"]["2.0-mini"]["regions"]["cn"]["source"]
    found = {tuple(error.absolute_path) for error in validator.iter_errors(data)}
    assert ("models", "2.5") in found
    assert ("models", "2.0", "resolutions", 1) in found
    assert ("models", "2.0-mini", "regions", "cn") in found


async def test_a_users_file_changes_a_built_in_price_and_a_default(tmp_path: Path) -> None:
    """Field by field: one price row and the ark preset's default change; everything else stays built in."""
    catalog_file = write(
        tmp_path,
        """\
[sources.me]
what = "My contract price"
date = "2026-12-05"

[models."2.0".regions.cn]
source = "me"
prices = [{ per_million = 40, source = "me" }]

[presets.ark]
default_model = "2.0"
""",
    )
    settings = make_settings(tmp_path, provider="ark", api_key=None, catalog_file=catalog_file)
    async with Client(create_app(settings)) as client:
        listed = (await client.call_tool("list_models", {"model": "all"})).structured_content or {}
        dry = (await client.call_tool("generate_video", {"prompt": "x", "dry_run": True})).structured_content or {}
    models = {m["key"]: m for m in listed["models"]}
    assert listed["default_model"] == "doubao-seedance-2-0-260128" and dry["model"] == "doubao-seedance-2-0-260128"
    assert models["2.0"]["price_source"] == "me (2026-12-05)" and dry["estimated_cost"] == round(108900 * 40 / 1e6, 4)
    assert models["2.0"]["resolutions"] == ["480p", "720p", "1080p"]  # the rest of the entry is the built-in one
    assert models["2.5"]["price"] and "RESALE" in models["2.5"]["price_source"]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        # TOML itself: the parser's own line and column.
        ('[models."3.0"]\nname = "x"\nids = { byteplus = "a" \n', 3, ["not valid TOML"]),
        # The schema: an unknown resolution, at the line that lists it.
        (NEW_MODEL.replace('resolutions = ["480p", "720p"]', 'resolutions = ["480p", "8k"]'), 9, ["'8k'", "4k"]),
        # A new model without its limits: the line of its table.
        (NEW_MODEL.replace('sizes = "v15"\n', ""), 5, ["'sizes' is a required property"]),
        # The loader's own checks: a default that is not one of its resolutions, a source nobody declared.
        (NEW_MODEL.replace('default_resolution = "720p"', 'default_resolution = "1080p"'),
         10, ["default_resolution", "1080p is not one of its resolutions"]),
        (NEW_MODEL.replace('per_million = 9.5, source = "our-invoice"', 'per_million = 9.5, source = "hearsay"'),
         19, ["prices[0].source", "unknown source 'hearsay'"]),
    ],
)  # fmt: skip
def test_a_malformed_file_is_refused_naming_the_line(tmp_path: Path, text: str, line: int, words: list[str]) -> None:
    """Each kind of mistake is a configuration error naming the file, the line and what is wrong."""
    catalog_file = write(tmp_path, text)
    with pytest.raises(ValidationError) as refused:
        load_settings({"SEEDANCE_CATALOG_FILE": str(catalog_file)})
    message = str(refused.value)
    assert str(catalog_file) in message and f"line {line}" in message, message
    assert all(word in message for word in words), message


def test_seedance_prices_is_part_of_the_same_override(tmp_path: Path) -> None:
    """SEEDANCE_PRICES rows replace the catalog's for that model and region, with their own source; bad ones are
    refused naming the entry."""
    settings = load_settings({"SEEDANCE_PRICES": '{"byteplus": {"2.0-mini": {"per_million": 3.5}}}'})
    mini = settings.catalog.in_region("2.0-mini", "byteplus")
    assert (
        mini is not None and mini.prices[0].per_million == 3.5 and mini.prices[0].source.startswith("SEEDANCE_PRICES")
    )
    eu = settings.catalog.in_region("2.0-mini", "byteplus-eu")
    assert eu is not None and eu.prices == mini.prices  # eu-west-1 follows ap-southeast-1 unless told otherwise
    with pytest.raises(ValidationError) as refused:
        load_settings({"SEEDANCE_PRICES": '{"cn": {"2.5-flash": {"per_million": 3}}}'})
    assert 'cn."2.5-flash"' in str(refused.value) and "not sold in the cn region" in str(refused.value)


def test_line_of_finds_tables_keys_and_inline_entries() -> None:
    text = '[models."3.0"]\nname = "x"\n\n[models."3.0".regions.byteplus]\nsource = "a"\nprices = []\n'
    assert line_of(text, ("models", "3.0")) == 1
    assert line_of(text, ("models", "3.0", "name")) == 2
    assert line_of(text, ("models", "3.0", "regions", "byteplus", "prices", 0, "source")) == 6
    assert line_of(text, ("presets", "ark")) is None


def test_an_unknown_model_in_seedance_model_names_the_catalog_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        load_settings({"SEEDANCE_MODEL": "3.0"})
    assert "SEEDANCE_CATALOG_FILE" in str(refused.value)
    settings: Any = load_settings({"SEEDANCE_MODEL": "3.0", "SEEDANCE_CATALOG_FILE": str(write(tmp_path, NEW_MODEL))})
    assert settings.default_model == "3.0"


async def test_a_draft_is_priced_only_by_a_row_that_says_drafts_are_billed_at_it(tmp_path: Path) -> None:
    """No published figure prices drafts: unknown by default (a budget refuses them); a user's row may price them."""
    async with Client(create_app(make_settings(tmp_path / "a", provider="ark", api_key=None))) as client:
        unknown = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "2.5", "draft": True, "dry_run": True}
        )
    priced_file = write(
        tmp_path,
        '[sources.me]\nwhat = "My contract"\ndate = "2026-12-05"\n\n[models."2.5".regions.cn]\nsource = "me"\n'
        'prices = [{ per_million = 35, resolutions = ["480p"], drafts = true, source = "me" }]\n',
    )
    settings = make_settings(tmp_path / "b", provider="ark", api_key=None, catalog_file=priced_file)
    async with Client(create_app(settings)) as client:
        priced = await client.call_tool(
            "generate_video", {"prompt": "x", "model": "2.5", "draft": True, "dry_run": True}
        )
    assert (unknown.structured_content or {}).get("estimated_cost") is None
    tokens = round(864 * 496 * (24 * 5 + 1) / 1024)
    assert (priced.structured_content or {})["estimated_cost"] == round(tokens * 35 / 1e6, 4)
