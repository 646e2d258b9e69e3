"""What a video costs in money: the catalog's price rows (per million output tokens, each with its source) applied
to one request.

Pure. The prices are data in the catalog (data/catalog.toml, per model and region, in the region's currency), all
second-hand; a user overrides them in SEEDANCE_CATALOG_FILE or SEEDANCE_PRICES. The bill itself is always
`usage.completion_tokens` × the price; this module only picks the row and multiplies. A resolution, a draft or a
model without a row has no known price: the answer is None ("price unknown"), never a guess.
"""

from __future__ import annotations

from collections.abc import Sequence

from seedance_mcp.catalog import ModelSpec, Price, Resolution


def price_row(prices: Sequence[Price], resolution: Resolution, *, draft: bool = False) -> Price | None:
    """The row that prices a resolution (a draft only where a row says drafts are billed at it), if any."""
    return next((row for row in prices if row.covers(resolution, draft=draft)), None)


def rate_for(price: Price, *, with_video_input: bool, generate_audio: bool, flex: bool) -> float:
    """The price per million tokens that one row asks of one request."""
    rate = price.per_million
    if with_video_input and price.per_million_with_video is not None:
        rate = price.per_million_with_video
    if not generate_audio and price.silent_per_million is not None:
        rate = price.silent_per_million
    if flex:
        rate *= price.flex_discount
    return rate


def quote(
    spec: ModelSpec,
    currency: str,
    *,
    resolution: Resolution,
    with_video_input: bool,
    generate_audio: bool | None,
    flex: bool,
    draft: bool = False,
) -> tuple[float, str] | None:
    """The rate per million tokens and its currency for one request, or None when no price is known.

    A draft (`draft=true`) is billed at a rate nobody has published: unknown unless a row says `drafts = true`."""
    row = price_row(spec.prices, resolution, draft=draft)
    if row is None:
        return None
    rate = rate_for(row, with_video_input=with_video_input, generate_audio=generate_audio is not False, flex=flex)
    return rate, currency


def price_text(spec: ModelSpec, currency: str) -> str | None:
    """`70 CNY/1M tokens (42 with video input) for 480p/720p; 77 (46) for 1080p; 4k: price unknown`."""
    if not spec.prices:
        return None
    parts: list[str] = []
    for row in spec.prices:
        text = f"{row.per_million:g}"
        if row.per_million_with_video is not None:
            text += f" ({row.per_million_with_video:g} with video input)"
        if row.silent_per_million is not None:
            text += f", silent {row.silent_per_million:g}"
        if row.resolutions is not None:
            text += f" for {'/'.join(row.resolutions)}"
        parts.append(text)
    unpriced = [r for r in spec.resolutions if price_row(spec.prices, r) is None]
    if unpriced:
        parts.append(f"{'/'.join(unpriced)}: price unknown")
    return f"{currency}/1M tokens: " + "; ".join(parts)


def price_sources(spec: ModelSpec) -> str | None:
    sources = list(dict.fromkeys(row.source for row in spec.prices if row.source))
    return "; ".join(sources) or None
