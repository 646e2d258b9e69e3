"""What a video costs in money: list prices per million output tokens, as data with their source and date.

Pure. Prices are the provider's list prices as published by resellers and issue threads (protocol.md §11.4, §8),
all second-hand: a user overrides them with `SEEDANCE_PRICES` (a JSON file or inline JSON, same shape as
`PRICE_TABLE`). The bill itself is always `usage.completion_tokens` × the price; this module only multiplies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from seedance_mcp.catalog import Region, Resolution

Currency = Literal["CNY", "USD"]
CURRENCY_OF: dict[Region, Currency] = {"cn": "CNY", "byteplus": "USD"}

PRICE_SOURCE = (
    "list prices per million output tokens from protocol.md §11.4 and §8 (reseller docs and issue threads, "
    "second-hand, as of 2026-11); override with SEEDANCE_PRICES"
)


@dataclass(frozen=True, slots=True)
class Price:
    """One model's price per million output tokens in one currency."""

    per_million: float
    per_million_with_video: float | None = None
    """The lower rate that applies when the request has reference videos (their length is billed too)."""
    per_million_1080p: float | None = None
    per_million_1080p_with_video: float | None = None
    silent_per_million: float | None = None
    """1.5 pro: the rate without generated audio."""
    flex_discount: float = 0.5
    """`service_tier: flex` bills this fraction of the price."""


# {region: {model key: Price}}. A model missing from a region has no known price there.
PRICE_TABLE: dict[Region, dict[str, Price]] = {
    "cn": {
        "2.5": Price(70, 42, per_million_1080p=77, per_million_1080p_with_video=46),
        "2.0": Price(46, 28, per_million_1080p=51, per_million_1080p_with_video=31),
        "2.0-fast": Price(37, 22),
        "2.0-mini": Price(23, 14),
        "1.0-pro": Price(15),
    },
    "byteplus": {
        "2.5": Price(10.70, 6.40),
        "2.0": Price(7.0, 4.3),
        "2.0-fast": Price(5.6),
        "1.5-pro": Price(2.4, silent_per_million=1.2),
        "1.0-pro": Price(2.5),
        "1.0-lite-t2v": Price(1.8),
        "1.0-lite-i2v": Price(1.8),
    },
}


def rate_for(
    price: Price, *, resolution: Resolution, with_video_input: bool, generate_audio: bool, flex: bool
) -> float:
    """The price per million tokens that applies to one request."""
    rate = price.per_million
    if resolution == "1080p" and price.per_million_1080p is not None:
        rate = price.per_million_1080p
        if with_video_input and price.per_million_1080p_with_video is not None:
            rate = price.per_million_1080p_with_video
    elif with_video_input and price.per_million_with_video is not None:
        rate = price.per_million_with_video
    if not generate_audio and price.silent_per_million is not None:
        rate = price.silent_per_million
    if flex:
        rate *= price.flex_discount
    return rate


def quote(
    table: Mapping[Region, Mapping[str, Price]],
    region: Region,
    *,
    model_key: str,
    resolution: Resolution,
    with_video_input: bool,
    generate_audio: bool | None,
    flex: bool,
) -> tuple[float, Currency] | None:
    """The rate per million tokens and its currency for one request, or None when no price is known."""
    price = table.get(region, {}).get(model_key)
    if price is None:
        return None
    rate = rate_for(
        price,
        resolution=resolution,
        with_video_input=with_video_input,
        generate_audio=generate_audio is not False,
        flex=flex,
    )
    return rate, CURRENCY_OF[region]


def parse_price_overrides(data: Any) -> dict[Region, dict[str, Price]]:
    """`SEEDANCE_PRICES` as JSON: `{"cn": {"2.0": {"per_million": 46, "per_million_with_video": 28}}, ...}`.

    Raises ValueError naming what is wrong."""
    if not isinstance(data, Mapping):
        raise ValueError("SEEDANCE_PRICES must be a JSON object of regions (`cn`, `byteplus`)")
    table: dict[Region, dict[str, Price]] = {region: dict(prices) for region, prices in PRICE_TABLE.items()}
    for region, models in data.items():  # pyright: ignore[reportUnknownVariableType]
        if region not in ("cn", "byteplus") or not isinstance(models, Mapping):
            raise ValueError(f"SEEDANCE_PRICES: unknown region {region!r} (use cn or byteplus) or not an object")
        for key, fields in models.items():  # pyright: ignore[reportUnknownVariableType]
            if not isinstance(fields, Mapping):
                raise ValueError(f"SEEDANCE_PRICES: {region}.{key} must be an object")
            try:
                table[region][str(key)] = Price(**{str(k): v for k, v in fields.items()})  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
            except TypeError as exc:
                raise ValueError(f"SEEDANCE_PRICES: {region}.{key}: {exc}") from None
    return table
