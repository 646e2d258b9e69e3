"""Reading the catalog's data: the packaged TOML file, a user's file merged into it, and the checks that turn a
mistake into an error naming the file, the line and the entry.

`load_builtin()` reads the packaged file (trusted: the tests check it against its schema) and builds the `Catalog`.
Its parse is cached beside it as JSON (`data/catalog.parsed.json`, with the SHA-256 of the TOML it came from): the
TOML parser and its pure-Python parse would be most of the catalog's share of the stdio start-up, and a cache
whose hash does not match is ignored (the TOML is parsed instead), so the TOML file stays the only truth.
`load_catalog(path, prices)` is what the settings call when SEEDANCE_CATALOG_FILE or SEEDANCE_PRICES is set: the
user's file is parsed, checked against the schema (every field optional), merged into the built-in data, checked
again as a whole (a new model must be complete), and built with the same checks as the built-in one.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from importlib.resources import files
from pathlib import Path
from typing import Any, cast

from seedance_mcp.catalog import (
    ALL_RATIOS,
    DIALECTS,
    PRESET_NAMES,
    REGIONS,
    Catalog,
    GatewayLimits,
    Lifecycle,
    ModelSpec,
    Preset,
    Price,
    Region,
    RegionInfo,
    Resolution,
    Source,
)

DATA_FILE = "data/catalog.toml"
PARSED_FILE = "data/catalog.parsed.json"
SCHEMA_FILE = "data/catalog.schema.json"

Spot = tuple[str | int, ...]


class CatalogError(ValueError):
    """A catalog file that cannot be used: the message names the file, the line, the entry and the field."""


class _Invalid(Exception):
    def __init__(self, path: Spot, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def read_packaged(name: str) -> str:
    return files("seedance_mcp").joinpath(name).read_text(encoding="utf-8")


def _toml(text: str) -> dict[str, Any]:
    import tomllib  # imported when a TOML file is really parsed (not at start-up when the cache is current)

    return tomllib.loads(text)


def parsed_cache(toml_text: str) -> dict[str, Any]:
    """What PARSED_FILE holds for a TOML text: its hash and its parse."""
    return {
        "generated_from": DATA_FILE,
        "do_not_edit": "edit catalog.toml; tests/unit/test_catalog.py checks this file and says how to refresh it",
        "sha256": hashlib.sha256(toml_text.encode()).hexdigest(),
        "data": _toml(toml_text),
    }


def write_parsed_cache() -> Path:
    """Refresh PARSED_FILE from catalog.toml (for whoever edits the catalog; tests/unit/test_catalog.py says when)."""
    target = Path(__file__).resolve().parent / PARSED_FILE
    cache = parsed_cache(read_packaged(DATA_FILE))
    target.write_text(json.dumps(cache, ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return target


@functools.cache
def _builtin_data() -> dict[str, Any]:
    text = read_packaged(DATA_FILE)
    try:
        cached = json.loads(read_packaged(PARSED_FILE))
    except (OSError, ValueError):
        cached = None
    if isinstance(cached, dict) and cached.get("sha256") == hashlib.sha256(text.encode()).hexdigest():  # pyright: ignore[reportUnknownMemberType]
        return cast("dict[str, Any]", cached["data"])
    return _toml(text)


def builtin_data() -> dict[str, Any]:
    """The packaged catalog as plain data (a fresh copy: callers may change it)."""
    return copy.deepcopy(_builtin_data())


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads(read_packaged(SCHEMA_FILE))


def load_builtin() -> Catalog:
    try:
        return build(_builtin_data(), origin="built-in")
    except _Invalid as exc:  # only a broken release gets here; the tests build it
        raise CatalogError(f"the built-in catalog: {_dotted(exc.path)}: {exc.message}") from None


def load_catalog(path: Path | None = None, prices: Mapping[str, Any] | None = None) -> Catalog:
    """The built-in catalog merged with a user's file (SEEDANCE_CATALOG_FILE) and price overrides (SEEDANCE_PRICES).

    Raises CatalogError naming the file, the line and the entry of the first problem."""
    data = builtin_data()
    origin = "built-in"
    text: str | None = None
    where = "SEEDANCE_CATALOG_FILE"
    if path is not None:
        where = f"SEEDANCE_CATALOG_FILE {path}"
        try:
            text = path.expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CatalogError(f"{where}: cannot be read ({exc})") from None
        import tomllib

        try:
            overrides = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise CatalogError(f"{where}: not valid TOML: {exc}") from None
        infinite = _not_finite(overrides)
        if infinite is not None:
            raise CatalogError(
                _where(where, text, infinite[0]) + f"{_dotted(infinite[0])}: {infinite[1]!r} is not a finite number"
            )
        _check_schema(overrides, partial_schema(), text, where)
        data = merge(data, overrides)
        _check_schema(data, schema(), text, where)
        origin = f"built-in + {path}"
    if prices:
        try:
            data = with_price_overrides(data, prices)
        except _Invalid as exc:
            entry = _dotted(exc.path[1:])
            raise CatalogError(f"SEEDANCE_PRICES: {entry + ': ' if entry else ''}{exc.message}") from None
        origin += " + SEEDANCE_PRICES"
    try:
        return build(data, origin=origin)
    except _Invalid as exc:
        raise CatalogError(_where(where, text, exc.path) + f"{_dotted(exc.path)}: {exc.message}") from None


# -- merging -------------------------------------------------------------------------------------------------------


def merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key, recursively; any other value (a list included) replaces the base's."""
    merged = dict(base)
    for key, given in override.items():
        value: Any = given
        current: Any = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            merged[key] = merge(cast("dict[str, Any]", current), cast("Mapping[str, Any]", value))
        else:
            merged[key] = copy.deepcopy(given)
    return merged


_LEGACY_PRICE_FIELDS = {
    "per_million",
    "per_million_with_video",
    "per_million_1080p",
    "per_million_1080p_with_video",
    "silent_per_million",
    "flex_discount",
}


def with_price_overrides(data: dict[str, Any], prices: Any) -> dict[str, Any]:
    """SEEDANCE_PRICES (`{"cn": {"2.0": {"per_million": 46, "per_million_with_video": 28}}}`) as price rows that
    replace the catalog's for that model in that region."""
    if not isinstance(prices, Mapping):
        raise _Invalid(("prices",), "must be a JSON object of regions (cn, byteplus, byteplus-eu)")
    data = copy.deepcopy(data)
    models: dict[str, Any] = data["models"]
    for region, entries in cast("Mapping[str, Any]", prices).items():
        if region not in REGIONS or not isinstance(entries, Mapping):
            raise _Invalid(("prices", str(region)), f"unknown region {region!r} (use cn, byteplus or byteplus-eu)")
        for key, fields in cast("Mapping[str, Any]", entries).items():
            spot: Spot = ("prices", region, str(key))
            if not isinstance(fields, Mapping):
                raise _Invalid(spot, 'must be an object like {"per_million": 46}')
            given = cast("Mapping[str, Any]", fields)
            unknown = set(given) - _LEGACY_PRICE_FIELDS
            if unknown:
                raise _Invalid(
                    spot, f"unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(_LEGACY_PRICE_FIELDS))})"
                )
            numbers = {name: value for name, value in given.items() if value is not None}
            if "per_million" not in numbers:
                raise _Invalid(spot, "needs per_million")
            for name, value in numbers.items():
                if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
                    raise _Invalid((*spot, name), f"{value!r} is not a price (a finite number, 0 or more)")
            model = models.get(str(key))
            if model is None:
                raise _Invalid(spot, f"{key!r} is not a catalog model (known: {', '.join(models)})")
            offers: dict[str, Any] = model.setdefault("regions", {})
            offer = offers.get(region)
            if offer is None:
                like = data["regions"].get(region, {}).get("like")
                if like is None or like not in offers:
                    raise _Invalid(spot, f"{key} is not sold in the {region} region")
                offer = offers[region] = copy.deepcopy(offers[like])
            source = "SEEDANCE_PRICES"
            data["sources"].setdefault(
                source, {"what": "The user's price overrides (SEEDANCE_PRICES)", "date": data["date"]}
            )
            row: dict[str, Any] = {"per_million": numbers["per_million"], "source": source}
            for legacy, name in (("per_million_with_video", "with_video"), ("silent_per_million", "silent")):
                if legacy in numbers:
                    row[name] = numbers[legacy]
            if "flex_discount" in numbers:
                row["flex_discount"] = numbers["flex_discount"]
            rows = [row]
            if "per_million_1080p" in numbers:
                high = {**row, "per_million": numbers["per_million_1080p"], "resolutions": ["1080p"]}
                high.pop("with_video", None)
                if "per_million_1080p_with_video" in numbers:
                    high["with_video"] = numbers["per_million_1080p_with_video"]
                rows = [high, row]
            offer["prices"] = rows
    return data


# -- building ------------------------------------------------------------------------------------------------------


def build(data: Mapping[str, Any], *, origin: str) -> Catalog:
    """The Catalog for checked data, or _Invalid naming the entry and what is wrong with it."""
    sources = {
        key: Source(
            key=key, what=str(entry["what"]), date=str(entry["date"]), confidence=entry.get("confidence", "high")
        )
        for key, entry in cast("Mapping[str, Any]", data["sources"]).items()
    }

    def cite(value: Any, path: Spot) -> str:
        keys = [value] if isinstance(value, str) else list(cast("list[str]", value or []))
        if not keys:
            raise _Invalid(path, "every fact needs a source (a key of [sources])")
        for key in keys:
            if key not in sources:
                raise _Invalid(path, f"unknown source {key!r} (add it to [sources] with `what` and `date`)")
        return "; ".join(sources[key].cite() for key in keys)

    regions: dict[Region, RegionInfo] = {}
    region_data = cast("Mapping[Region, Any]", data["regions"])
    for key, entry in region_data.items():
        like = entry.get("like")
        if like is not None and (like not in region_data or like == key or region_data[like].get("like")):
            raise _Invalid(("regions", key, "like"), f"must name another region that names none itself, not {like!r}")
        regions[key] = RegionInfo(
            key=key,
            name=entry["name"],
            cloud=entry["cloud"],
            title=entry["title"],
            base_url=entry["base_url"].rstrip("/"),
            currency=entry["currency"],
            source=cite(entry["source"], ("regions", key, "source")),
            note=entry.get("note"),
        )

    sizes: dict[str, dict[Resolution, tuple[tuple[int, int], ...]]] = {}
    for name, table in cast("Mapping[str, Any]", data["sizes"]).items():
        cite(table.get("source"), ("sizes", name, "source"))
        sizes[name] = {
            res: tuple((int(w), int(h)) for w, h in cells) for res, cells in table.items() if res != "source"
        }

    models: dict[str, ModelSpec] = {}
    by_region: dict[Region, dict[str, ModelSpec]] = {key: {} for key in regions}
    names_seen: dict[str, str] = {}
    model_data = cast("Mapping[str, Any]", data["models"])
    for key, entry in model_data.items():
        spec = _model(key, entry, sizes, cite)
        for name in spec.names():
            if names_seen.setdefault(name, key) != key:
                raise _Invalid(("models", key), f"the name {name!r} is already {names_seen[name]}'s")
        models[key] = spec
        offers = cast("Mapping[str, Any]", entry.get("regions") or {})
        if not offers:
            raise _Invalid(("models", key, "regions"), "name at least one region that sells it")
        for region in regions:
            offer_path: Spot = ("models", key, "regions", region)
            offer = offers.get(region)
            like = region_data[region].get("like")
            if offer is None and like is not None:
                offer = offers.get(like)
                offer_path = ("models", key, "regions", like)
            if offer is None:
                continue
            id_kind = region_data[region]["ids"]
            if not (spec.cn_id if id_kind == "cn" else spec.byteplus_id):
                raise _Invalid((*offer_path[:2], "ids", id_kind), f"{key} is sold in {region} but has no {id_kind} id")
            by_region[region][key] = _offered(spec, offer, offer_path, cite)
    for region, offered in by_region.items():
        for key, spec in offered.items():
            replacement = spec.lifecycle.replacement if spec.lifecycle else None
            if replacement is not None and replacement not in offered:
                raise _Invalid(
                    ("models", key, "regions", region, "replacement"),
                    f"{replacement!r} is not a model sold in {region}",
                )

    presets: dict[str, Preset] = {}
    preset_models: dict[str, tuple[str, ...] | None] = {}
    day = str(data["date"])
    for name, entry in cast("Mapping[str, Any]", data["presets"]).items():
        path: Spot = ("presets", name)
        if name not in PRESET_NAMES:
            raise _Invalid(path, f"unknown preset (known: {', '.join(PRESET_NAMES)}); a new one needs code")
        if entry["dialect"] not in DIALECTS:
            raise _Invalid((*path, "dialect"), f"unknown dialect {entry['dialect']!r}")
        region: Region = entry["region"]
        if region not in regions:
            raise _Invalid((*path, "region"), f"unknown region {region!r}")
        keys = cast("list[str] | None", entry.get("models"))
        for model_key in keys or ():
            if model_key not in models:
                raise _Invalid((*path, "models"), f"{model_key!r} is not a catalog model")
            if model_key not in by_region[region]:
                raise _Invalid((*path, "models"), f"{model_key} is not sold in the {region} region")
        cite(entry["source"], (*path, "source"))
        official = bool(entry.get("official", False))
        base_url = regions[region].base_url if official else entry.get("base_url")
        preset = Preset(
            name=name,
            dialect=entry["dialect"],
            base_url=base_url.rstrip("/") if base_url else None,
            region=region,
            models=(),
            default_model=entry["default_model"],
            cancel=bool(entry["cancel"]),
            title=entry["title"],
            limits=_limits(entry.get("limits") or {}),
            base_url_by_model=dict(entry.get("base_url_by_model") or {}),
            official=official,
            assets=bool(entry.get("assets", False)),
            currency=regions[region].currency,
        )
        catalog_keys = tuple(keys) if keys is not None else None
        offered = by_region[region]
        specs = (
            tuple(offered[k] for k in catalog_keys)
            if catalog_keys is not None
            else tuple(s for s in offered.values() if s.family == "seedance")
        )
        default = entry["default_model"]
        chosen = next((s for s in specs if s.key == default), None)
        if chosen is None:
            raise _Invalid((*path, "default_model"), f"{default!r} is not among the models this preset sells")
        if chosen.status_on(day) == "retired":
            raise _Invalid((*path, "default_model"), f"{default} is retired in {region} by the catalog's date {day}")
        presets[name] = replace(preset, models=specs)
        preset_models[name] = catalog_keys
    missing = [name for name in PRESET_NAMES if name not in presets]
    if missing:
        raise _Invalid(("presets",), f"missing presets: {', '.join(missing)}")
    return Catalog(
        date=day,
        sources=sources,
        regions=regions,
        models=models,
        by_region=by_region,
        presets=presets,
        preset_models=preset_models,
        origin=origin,
    )


def _model(key: str, entry: Mapping[str, Any], sizes: Mapping[str, Any], cite: Any) -> ModelSpec:
    path: Spot = ("models", key)
    resolutions = tuple(cast("list[Resolution]", entry["resolutions"]))
    table = sizes.get(entry["sizes"])
    if table is None:
        raise _Invalid((*path, "sizes"), f"unknown size table {entry['sizes']!r} (known: {', '.join(sizes)})")
    for resolution in resolutions:
        if resolution not in table:
            raise _Invalid((*path, "resolutions"), f"the size table {entry['sizes']} has no {resolution} row")
    default_resolution = entry["default_resolution"]
    if default_resolution not in resolutions:
        raise _Invalid((*path, "default_resolution"), f"{default_resolution} is not one of its resolutions")
    t2v = tuple(entry.get("ratios_text", ALL_RATIOS))
    i2v = tuple(entry.get("ratios_image", ALL_RATIOS))
    default_t2v = entry.get("default_ratio_text", "adaptive" if "adaptive" in t2v else t2v[0])
    default_i2v = entry.get("default_ratio_image", "adaptive" if "adaptive" in i2v else i2v[0])
    if default_t2v not in t2v:
        raise _Invalid((*path, "default_ratio_text"), f"{default_t2v} is not one of its ratios_text")
    if default_i2v not in i2v:
        raise _Invalid((*path, "default_ratio_image"), f"{default_i2v} is not one of its ratios_image")
    duration = entry["duration"]
    if duration["min"] > duration["max"]:
        raise _Invalid((*path, "duration"), "min is above max")
    fixed = tuple(duration["fixed"]) if "fixed" in duration else None
    if fixed is not None and any(not duration["min"] <= d <= duration["max"] for d in fixed):
        raise _Invalid((*path, "duration", "fixed"), "every fixed length must lie between min and max")
    references = cast("Mapping[str, Any]", entry.get("references") or {})
    reference_resolutions = tuple(cast("list[Resolution]", references.get("resolutions", resolutions)))
    for spot, values in (
        ("references", reference_resolutions),
        ("draft_final_resolutions", tuple(cast("list[Resolution]", entry.get("draft_final_resolutions", ())))),
    ):
        stray = [r for r in values if r not in resolutions]
        if stray:
            raise _Invalid((*path, spot), f"{stray[0]} is not one of its resolutions")
    ids = entry["ids"]
    return ModelSpec(
        key=key,
        name=entry["name"],
        cn_id=ids.get("cn", ""),
        byteplus_id=ids.get("byteplus", ""),
        modes=tuple(entry["modes"]),
        resolutions=resolutions,
        default_resolution=default_resolution,
        t2v_ratios=t2v,
        i2v_ratios=i2v,
        default_t2v_ratio=default_t2v,
        default_i2v_ratio=default_i2v,
        duration_min=duration["min"],
        duration_max=duration["max"],
        duration_auto=bool(duration.get("auto", False)),
        default_duration_auto=bool(duration.get("default_auto", False)),
        durations=fixed,
        frames=bool(entry.get("frames", False)),
        audio=bool(entry.get("audio", False)),
        draft=bool(entry.get("draft", False)),
        draft_final_resolutions=tuple(entry.get("draft_final_resolutions", ())),
        camera_fixed=bool(entry.get("camera_fixed", False)),
        flex_tier=bool(entry.get("flex_tier", False)),
        sizes=table,
        typical_render_seconds=float(entry["typical_render_seconds"]),
        max_reference_images=int(references.get("images", 0)),
        max_reference_videos=int(references.get("videos", 0)),
        max_reference_audios=int(references.get("audios", 0)),
        reference_resolutions=reference_resolutions,
        max_reference_video_seconds=references.get("max_seconds_total"),
        min_reference_seconds=references.get("min_seconds"),
        audio_only_references=bool(references.get("audio_alone", False)),
        frame_modes_need_adaptive=bool(entry.get("frame_modes_need_adaptive", False)),
        output_formats=tuple(entry.get("output_formats", ())),
        omni_reference_task_types=tuple(entry.get("omni_reference_task_types", ())),
        web_search=bool(entry.get("web_search", False)),
        priority=bool(entry.get("priority", False)),
        needs_activation=bool(entry.get("needs_activation", False)),
        notes=tuple(entry.get("notes", ())),
        aliases=tuple(entry.get("aliases", ())),
        family=entry.get("family", "seedance"),
        source=cite(entry["source"], (*path, "source")),
    )


_OFFER_FIELDS = ("web_search", "draft", "flex_tier", "priority")


def _offered(spec: ModelSpec, offer: Mapping[str, Any], path: Spot, cite: Any) -> ModelSpec:
    """The model as one region sells it: its lifecycle there, the fields that differ, its prices."""
    changes: dict[str, Any] = {name: bool(offer[name]) for name in _OFFER_FIELDS if name in offer}
    source = cite(offer["source"], (*path, "source"))
    if "resolutions" in offer:
        resolutions = tuple(cast("list[Resolution]", offer["resolutions"]))
        stray = [r for r in resolutions if r not in spec.sizes]
        if stray:
            raise _Invalid((*path, "resolutions"), f"the model's size table has no {stray[0]} row")
        changes["resolutions"] = resolutions
        changes["reference_resolutions"] = (
            tuple(r for r in spec.reference_resolutions if r in resolutions) or resolutions
        )
        if spec.draft_final_resolutions:
            changes["draft_final_resolutions"] = tuple(r for r in spec.draft_final_resolutions if r in resolutions)
    resolutions = changes.get("resolutions", spec.resolutions)
    default_resolution = offer.get("default_resolution", spec.default_resolution)
    if default_resolution not in resolutions:
        raise _Invalid((*path, "default_resolution"), f"{default_resolution} is not one of its resolutions there")
    changes["default_resolution"] = default_resolution
    if "output_formats" in offer:
        changes["output_formats"] = tuple(offer["output_formats"])
    status = offer.get("status", "on_sale")
    if status != "on_sale" or offer.get("replacement"):
        changes["lifecycle"] = Lifecycle(
            status=status,
            date=offer.get("date"),
            replacement=offer.get("replacement"),
            source=source,
            note=offer.get("note"),
        )
    prices: list[Price] = []
    for index, row in enumerate(cast("list[Mapping[str, Any]]", offer.get("prices") or [])):
        row_path: Spot = (*path, "prices", index)
        covered = tuple(cast("list[Resolution]", row["resolutions"])) if "resolutions" in row else None
        stray = [r for r in covered or () if r not in resolutions]
        if stray:
            raise _Invalid((*row_path, "resolutions"), f"{stray[0]} is not a resolution it is sold at there")
        prices.append(
            Price(
                per_million=float(row["per_million"]),
                per_million_with_video=_number(row.get("with_video")),
                silent_per_million=_number(row.get("silent")),
                flex_discount=float(row.get("flex_discount", 0.5)),
                resolutions=covered,
                source=cite(row["source"], (*row_path, "source")),
                drafts=bool(row.get("drafts", False)),
            )
        )
    changes["prices"] = tuple(prices)
    changes["region_note"] = offer.get("note")
    return replace(spec, **changes)


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _limits(entry: Mapping[str, Any]) -> GatewayLimits:
    durations = entry.get("durations")
    resolutions = entry.get("resolutions")
    return GatewayLimits(
        durations=tuple(durations) if durations is not None else None,
        resolutions=tuple(resolutions) if resolutions is not None else None,
        extra_ratios=tuple(entry.get("extra_ratios", ())),
        unsupported=tuple(entry.get("unsupported", ())),
        fixed_size=bool(entry.get("fixed_size", False)),
    )


def _not_finite(node: Any, path: Spot = ()) -> tuple[Spot, float] | None:
    """The first number in a user's file that is NaN or infinite (TOML allows `nan` and `inf`; JSON Schema cannot
    refuse them: NaN passes every comparison, so a NaN price would pass every limit), with where it is."""
    if isinstance(node, float) and not math.isfinite(node):
        return path, node
    if isinstance(node, Mapping):
        items: Any = cast("Mapping[str, Any]", node).items()
    elif isinstance(node, list):
        items = enumerate(cast("list[Any]", node))
    else:
        return None
    for key, value in items:
        found = _not_finite(value, (*path, key))
        if found is not None:
            return found
    return None


# -- schema checks and where an error is -------------------------------------------------------------------------


@functools.cache
def partial_schema() -> dict[str, Any]:
    """The schema with nothing required: what a user's file must fit before it is merged."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in cast("dict[str, Any]", node).items() if k != "required"}
        if isinstance(node, list):
            return [strip(v) for v in cast("list[Any]", node)]
        return node

    return strip(schema())


def _check_schema(data: Mapping[str, Any], against: Mapping[str, Any], text: str | None, where: str) -> None:
    # Only when a user's file is read: jsonschema takes a tenth of a second to import. (Its stubs are partial.)
    import importlib

    library: Any = importlib.import_module("jsonschema")
    importlib.import_module("jsonschema.exceptions")
    error: Any = library.exceptions.best_match(library.Draft202012Validator(against).iter_errors(data))
    if error is None:
        return
    path: Spot = tuple(cast("list[str | int]", list(error.absolute_path)))
    raise CatalogError(_where(where, text, path) + f"{_dotted(path) or '(the file)'}: {_schema_message(error)}")


def _schema_message(error: Any) -> str:
    validator = error.validator
    if validator == "additionalProperties":
        return error.message.replace("Additional properties are not allowed", "unknown field(s)")
    if validator == "required":
        return f"{error.message} (a new entry must be complete)"
    allowed_values: Any = error.validator_value
    if validator in ("enum", "const") and isinstance(allowed_values, list):
        allowed = ", ".join(str(v) for v in cast("list[Any]", allowed_values))
        return f"{error.instance!r} is not one of: {allowed}"
    return str(error.message)


def _dotted(path: Sequence[str | int]) -> str:
    parts: list[str] = []
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + (part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else json.dumps(part)))
    return "".join(parts)


def _where(where: str, text: str | None, path: Spot) -> str:
    line = line_of(text, path) if text is not None else None
    return f"{where}, line {line}: " if line else f"{where}: "


def line_of(text: str, path: Sequence[str | int]) -> int | None:
    """The line of a TOML file where the entry at `path` (or its closest enclosing table) is written."""
    keys = [p for p in path if isinstance(p, str)]
    best: tuple[int, int] | None = None  # (matched keys, line)
    table: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        header = re.match(r"^\[\[?(.+?)\]\]?\s*(#.*)?$", line)
        if header:
            table = _key_path(header.group(1)) or []
            here = table
        else:
            left = line.split("=", 1)[0] if "=" in line else ""
            inner = _key_path(left) if left else None
            if inner is None:
                continue
            here = [*table, *inner]
        matched = _common(here, keys)
        if matched and (best is None or matched > best[0]):
            best = (matched, number)
            if matched == len(keys):
                break
    return best[1] if best else None


def _key_path(text: str) -> list[str] | None:
    import tomllib

    try:
        parsed: Any = tomllib.loads(f"{text.strip()} = 0")
    except tomllib.TOMLDecodeError:
        return None
    keys: list[str] = []
    while isinstance(parsed, dict) and len(cast("dict[str, Any]", parsed)) == 1:
        ((key, parsed),) = cast("dict[str, Any]", parsed).items()
        keys.append(key)
    return keys


def _common(here: Sequence[str], wanted: Sequence[str]) -> int:
    if len(here) > len(wanted) or list(wanted[: len(here)]) != list(here):
        return 0
    return len(here)


__all__ = ["CatalogError", "builtin_data", "line_of", "load_builtin", "load_catalog", "merge", "schema"]
