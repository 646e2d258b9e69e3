"""The Seedance model catalog: models, regions, lifecycles, prices and presets, as typed data.

The facts live in a packaged data file (`data/catalog.toml`, each fact with its source and date), read when first
needed (`builtin_catalog()`); a user's own file (SEEDANCE_CATALOG_FILE) extends or overrides it and is read by the
settings' validation, at the edge (`catalog_loader.py`). Nothing here does I/O at import. The result is one
immutable `Catalog`, passed to whatever needs it (the settings carry the merged one); a `Preset` taken from it
carries its own models, already as its region sells them, so validation, pricing and the tools need only the preset.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date as Day
from typing import Literal, NamedTuple, overload

Resolution = Literal["480p", "720p", "1080p", "4k"]
Ratio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]
Mode = Literal["text", "first_frame", "first_last_frame", "reference_images", "multimodal_reference"]
Region = Literal["cn", "byteplus", "byteplus-eu"]
Status = Literal["on_sale", "retiring", "retired"]
DialectName = Literal["ark", "gptge", "yescale", "openai", "openai-extended", "aiid"]

RESOLUTIONS: tuple[Resolution, ...] = ("480p", "720p", "1080p", "4k")
REGIONS: tuple[Region, ...] = ("cn", "byteplus", "byteplus-eu")
FIXED_RATIOS: tuple[Ratio, ...] = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
ALL_RATIOS: tuple[Ratio, ...] = (*FIXED_RATIOS, "adaptive")
MODES: tuple[Mode, ...] = ("text", "first_frame", "first_last_frame", "reference_images", "multimodal_reference")
DIALECTS: tuple[DialectName, ...] = ("ark", "gptge", "yescale", "openai", "openai-extended", "aiid")
PRESET_NAMES = ("ark", "byteplus", "kkiai", "gptge", "yescale", "openai-compatible", "new-api", "aiid", "sandbox")
"""The values of SEEDANCE_PROVIDER: a catalog file may change these presets, not add others (each needs code)."""

MODE_TEXT: dict[Mode, str] = {
    "text": "text-to-video (prompt only)",
    "first_frame": "image-to-video from a first frame",
    "first_last_frame": "first and last frame",
    "reference_images": "1-4 reference images (cite them as [Image 1] in the prompt)",
    "multimodal_reference": "reference images, videos and audios",
}


class Source(NamedTuple):
    """Where facts come from, and as of when."""

    key: str
    what: str
    date: str
    confidence: Literal["high", "low"] = "high"

    def cite(self) -> str:
        return f"{self.key} ({self.date}{', low confidence' if self.confidence == 'low' else ''})"


class Lifecycle(NamedTuple):
    """A model's standing in one region: recorded status, the day it changes (or changed), what replaces it."""

    status: Status
    date: str | None = None
    """ISO day: a retirement's day (past or announced), or when a retiring model stops taking tasks."""
    replacement: str | None = None
    """The catalog key of the model the provider names as the replacement."""
    source: str = ""
    """The source it comes from, cited (`BP-SA (2026-11-13)`)."""
    note: str | None = None

    def status_on(self, day: Day | str) -> Status:
        """The status on a given day: a retiring model whose day has come is retired; one retired from a day not
        yet come is still retiring."""
        today = day if isinstance(day, str) else day.isoformat()
        if self.status == "on_sale":
            return "on_sale"
        if self.date is not None:
            return "retired" if today >= self.date else "retiring"
        return self.status


class Price(NamedTuple):
    """One price row per million output tokens in the region's currency, for the resolutions it names."""

    per_million: float
    per_million_with_video: float | None = None
    """The rate when the request has reference videos (their length is billed too)."""
    silent_per_million: float | None = None
    """The rate without generated audio (1.5 pro)."""
    flex_discount: float = 0.5
    """`service_tier: flex` bills this fraction of the price."""
    resolutions: tuple[Resolution, ...] | None = None
    """The resolutions this row prices; None: every one."""
    source: str = ""
    """Where the figure comes from, cited."""
    drafts: bool = False
    """Whether drafts (`draft: true`) are billed at this rate too; no published figure says so yet."""

    def covers(self, resolution: Resolution, *, draft: bool = False) -> bool:
        return (self.resolutions is None or resolution in self.resolutions) and (self.drafts or not draft)


@dataclass(frozen=True)
class ModelSpec:
    """One Seedance model and everything a request to it may carry (as one region sells it, once taken from a
    preset or `Catalog.in_region`)."""

    key: str
    """Short stable name, e.g. `2.5`."""
    name: str
    cn_id: str
    """The Volcengine id; empty when none is known."""
    byteplus_id: str
    """The BytePlus id (ap-southeast-1 and eu-west-1); empty when none is known."""
    modes: tuple[Mode, ...]
    resolutions: tuple[Resolution, ...]
    default_resolution: Resolution
    t2v_ratios: tuple[Ratio, ...]
    i2v_ratios: tuple[Ratio, ...]
    default_t2v_ratio: Ratio
    default_i2v_ratio: Ratio
    duration_min: int
    duration_max: int
    duration_auto: bool
    """Whether `duration=-1` (the model chooses the length) is allowed."""
    frames: bool
    audio: bool
    draft: bool
    camera_fixed: bool
    flex_tier: bool
    sizes: Mapping[Resolution, tuple[tuple[int, int], ...]]
    typical_render_seconds: float
    """Published render time of a 5 s 720p clip, used to estimate progress and the first poll."""
    max_reference_images: int = 0
    max_reference_videos: int = 0
    max_reference_audios: int = 0
    reference_resolutions: tuple[Resolution, ...] = ()
    notes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())
    max_reference_video_seconds: int | None = None
    """The combined length of all reference videos (and, separately, audios), where the provider caps it."""
    min_reference_seconds: float | None = None
    """The shortest reference video or audio the provider takes (1.8 s)."""
    audio_only_references: bool = False
    """Whether reference audio may be the only reference medium (2.5)."""
    frame_modes_need_adaptive: bool = False
    """First-frame and first+last-frame requests must send `ratio: adaptive` (2.5; else TaskTypeConstraint)."""
    default_duration_auto: bool = False
    """The provider's default length is -1 (the model picks, billed on the real length): always send a duration."""
    output_formats: tuple[str, ...] = ()
    """Container formats `output_format` may ask for; empty: the field is not sent."""
    omni_reference_task_types: tuple[str, ...] = ()
    """`omni_reference_task_type` values (2.5: reference, edit or extend a video)."""
    web_search: bool = False
    """`tools: [{"type": "web_search"}]` on text-only requests."""
    priority: bool = False
    """`priority` 0-9 (queue order within an endpoint)."""
    draft_final_resolutions: tuple[Resolution, ...] = ()
    """The resolutions a draft may be rendered for real at (`draft_task_id`), the first being the provider's default
    when none is sent; empty: any of the model's."""
    needs_activation: bool = False
    """The account must be granted the model and activate it before the first call (2.5 Flash)."""
    lifecycle: Lifecycle | None = None
    """Its standing in the region it was taken for; None for a model on sale with nothing to say."""
    prices: tuple[Price, ...] = ()
    """Its price rows in the region it was taken for; empty: no price known."""
    source: str = ""
    """Where its limits come from, cited."""
    region_note: str | None = None
    """What the catalog says of it in the region it was taken for (why a field differs there, say)."""
    durations: tuple[int, ...] | None = None
    """A fixed set of lengths in seconds (gemini-omni: 4, 6, 8, 10), instead of every whole second in the range."""
    family: Literal["seedance", "gemini"] = "seedance"
    """Seedance proper, or another model a gateway sells through its Seedance task API (aiid's gemini-omni)."""

    def model_id(self, region: Region) -> str:
        return (self.cn_id or self.byteplus_id) if region == "cn" else (self.byteplus_id or self.cn_id)

    def size(self, resolution: Resolution, ratio: Ratio) -> tuple[int, int]:
        """Output width and height; `adaptive` is estimated as 16:9 (the real ratio follows the input image)."""
        index = FIXED_RATIOS.index(ratio) if ratio != "adaptive" else 0
        return self.sizes[resolution][index]

    def status_on(self, day: Day | str) -> Status:
        return self.lifecycle.status_on(day) if self.lifecycle is not None else "on_sale"

    def names(self) -> tuple[str, ...]:
        """Every name a call may use for it: key, ids and aliases, lower-case."""
        return tuple(n.lower() for n in (self.key, self.cn_id, self.byteplus_id, *self.aliases) if n)


class GatewayLimits(NamedTuple):
    """What a gateway's own document narrows beyond the model's limits."""

    durations: tuple[int, ...] | None = None
    resolutions: tuple[Resolution, ...] | None = None
    extra_ratios: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    """Arguments this gateway has no way to carry (and `safety_identifier`, the field our job marker travels in,
    where its document lacks it): refused, never dropped."""
    fixed_size: bool = False
    """The gateway takes an output size (`WxH`), not a resolution and a ratio: no `adaptive` ratio, no `-1` length."""


class RegionInfo(NamedTuple):
    """Where Ark runs: its region name, default base URL and the currency of its prices."""

    key: Region
    name: str
    """The provider's own name for the region (`cn-beijing`, `ap-southeast-1`, `eu-west-1`)."""
    cloud: Literal["volcengine", "byteplus"]
    title: str
    base_url: str
    currency: str
    source: str = ""
    note: str | None = None


@dataclass(frozen=True)
class Preset:
    """A value of SEEDANCE_PROVIDER: a wire dialect, a base URL, and the models it sells, as its region sells them."""

    name: str
    dialect: DialectName
    base_url: str | None
    region: Region
    models: tuple[ModelSpec, ...]
    """Every model this preset names, retired ones included (a call naming one is refused with its replacement)."""
    default_model: str
    cancel: bool
    title: str
    limits: GatewayLimits = field(default_factory=GatewayLimits)
    base_url_by_model: Mapping[str, str] = field(default_factory=lambda: {})
    """Model keys that live under another base URL on this gateway (kkiai serves 2.0 on /api/v3)."""
    official: bool = False
    """Ark itself: its base URL is its region's, and SEEDANCE_REGION may pick another region of the same cloud."""
    assets: bool = False
    """`asset://<id>` media (the account's asset library) pass through untouched."""
    currency: str = "CNY"

    @property
    def model_keys(self) -> tuple[str, ...]:
        return tuple(spec.key for spec in self.models)

    def model(self, key: str) -> ModelSpec:
        """The model with this catalog key (KeyError if this preset does not sell it)."""
        for spec in self.models:
            if spec.key == key:
                return spec
        raise KeyError(key)

    def sends_safety_identifier(self) -> bool:
        return self.dialect == "ark" and "safety_identifier" not in self.limits.unsupported


class Catalog:
    """Everything known about Seedance models, as one immutable value (built-in, or merged with a user's file).

    A plain class rather than a dataclass: the settings carry one, and pydantic then only checks its type."""

    __slots__ = ("by_region", "date", "models", "origin", "preset_models", "presets", "regions", "sources")

    def __init__(
        self,
        *,
        date: str,
        sources: Mapping[str, Source],
        regions: Mapping[Region, RegionInfo],
        models: Mapping[str, ModelSpec],
        by_region: Mapping[Region, Mapping[str, ModelSpec]],
        presets: Mapping[str, Preset],
        preset_models: Mapping[str, tuple[str, ...] | None],
        origin: str = "built-in",
    ) -> None:
        self.date = date
        """The day its facts were last checked (ISO)."""
        self.sources = sources
        self.regions = regions
        self.models = models
        """Each model with its limits as the data states them (use `in_region` for a region's own view)."""
        self.by_region = by_region
        """The models each region sells (or sold), as it sells them: lifecycle, fields and prices applied."""
        self.presets = presets
        """Each preset in its own region."""
        self.preset_models = preset_models
        """Each preset's model keys as the data names them (None: every Seedance model of its region)."""
        self.origin = origin
        """`built-in`, or the built-in catalog and the user's file and prices it was merged with."""

    def __repr__(self) -> str:
        return f"Catalog(date={self.date!r}, origin={self.origin!r}, models={list(self.models)!r})"

    def in_region(self, key: str, region: Region) -> ModelSpec | None:
        return self.by_region.get(region, {}).get(key)

    def preset(self, name: str, region: Region | None = None) -> Preset:
        """A preset, in another region of its cloud when asked (its base URL, models, lifecycles and prices)."""
        preset = self.presets[name]
        if region is None or region == preset.region:
            return preset
        info = self.regions[region]
        return replace(
            preset,
            region=region,
            base_url=info.base_url if preset.official else preset.base_url,
            models=self._models_for(self.preset_models.get(name), region),
            currency=info.currency,
            title=info.title if preset.official else preset.title,
        )

    def _models_for(self, keys: Sequence[str] | None, region: Region) -> tuple[ModelSpec, ...]:
        offered = self.by_region.get(region, {})
        if keys is None:
            return tuple(spec for spec in offered.values() if spec.family == "seedance")
        return tuple(offered[key] for key in keys if key in offered)

    def find(self, name: str) -> ModelSpec | None:
        """A model by key, CN id, BytePlus id or alias, whatever the region."""
        wanted = name.strip().lower()
        for spec in self.models.values():
            if wanted in spec.names():
                return spec
        return None

    def regions_of(self, cloud: str) -> tuple[Region, ...]:
        return tuple(key for key, info in self.regions.items() if info.cloud == cloud)

    def region_named(self, name: str) -> Region | None:
        """A region by its key (`byteplus-eu`) or the provider's name for it (`eu-west-1`)."""
        wanted = name.strip().lower()
        for key, info in self.regions.items():
            if wanted in (key, info.name):
                return key
        return None


@functools.cache
def builtin_catalog() -> Catalog:
    """The packaged catalog, read and built once, when first needed."""
    from seedance_mcp.catalog_loader import load_builtin

    return load_builtin()


def find_model(name: str, preset: Preset) -> ModelSpec | None:
    """The catalog entry for a model id, key or alias, if this preset offers it."""
    wanted = name.strip().lower()
    for spec in preset.models:
        if wanted in spec.names():
            return spec
    return None


def estimate_tokens(width: int, height: int, seconds: float) -> int:
    """Output tokens billed for a clip: w × h × (24·s + 1) / 1024 (protocol.md §8)."""
    return round(width * height * (24 * seconds + 1) / 1024)


def expected_render_seconds(spec: ModelSpec, resolution: Resolution, seconds: float) -> float:
    """A rough render-time estimate that scales the published 720p 5 s figure by pixels and length."""
    width, height = spec.size(resolution, "16:9")
    pixel_scale = (width * height / (1280 * 720)) ** 0.5
    return max(10.0, spec.typical_render_seconds * pixel_scale * max(seconds, 2.0) / 5.0)


class _PresetsView(Mapping[str, Preset]):
    def __getitem__(self, key: str) -> Preset:
        return builtin_catalog().presets[key]

    def __iter__(self) -> Iterator[str]:
        return iter(builtin_catalog().presets)

    def __len__(self) -> int:
        return len(builtin_catalog().presets)


class _ModelsView(Mapping[str, ModelSpec]):
    def __getitem__(self, key: str) -> ModelSpec:
        return builtin_catalog().models[key]

    def __iter__(self) -> Iterator[str]:
        return iter(builtin_catalog().models)

    def __len__(self) -> int:
        return len(builtin_catalog().models)


class _ModelListView(Sequence[ModelSpec]):
    @overload
    def __getitem__(self, index: int) -> ModelSpec: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[ModelSpec]: ...
    def __getitem__(self, index: int | slice) -> ModelSpec | Sequence[ModelSpec]:
        return tuple(builtin_catalog().models.values())[index]

    def __len__(self) -> int:
        return len(builtin_catalog().models)


PRESETS: Mapping[str, Preset] = _PresetsView()
"""The built-in presets (no user file): for tests and tools that run without settings."""
MODELS_BY_KEY: Mapping[str, ModelSpec] = _ModelsView()
"""The built-in models by key (no user file)."""
MODELS: Sequence[ModelSpec] = _ModelListView()
"""The built-in models in catalog order (no user file)."""
