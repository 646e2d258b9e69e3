"""The Seedance model catalog: pure data, read by validation, tool descriptions, `list_models` and the sandbox.

Facts from `shared/protocol.md` §2, §3 and §8 (BytePlus / Volcengine create-task pages). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Resolution = Literal["480p", "720p", "1080p"]
Ratio = Literal["16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"]
Mode = Literal["text", "first_frame", "first_last_frame", "reference_images", "multimodal_reference"]
Region = Literal["cn", "byteplus"]

RESOLUTIONS: tuple[Resolution, ...] = ("480p", "720p", "1080p")
FIXED_RATIOS: tuple[Ratio, ...] = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9")
ALL_RATIOS: tuple[Ratio, ...] = (*FIXED_RATIOS, "adaptive")

MODE_TEXT: dict[Mode, str] = {
    "text": "text-to-video (prompt only)",
    "first_frame": "image-to-video from a first frame",
    "first_last_frame": "first and last frame",
    "reference_images": "1-4 reference images (cite them as [Image 1] in the prompt)",
    "multimodal_reference": "up to 9 reference images, 3 reference videos and 3 reference audios",
}

# Output sizes (width, height) per resolution and ratio, §3.6. Cell order follows FIXED_RATIOS.
_SIZES_V1: dict[Resolution, tuple[tuple[int, int], ...]] = {
    "480p": ((864, 480), (736, 544), (640, 640), (544, 736), (480, 864), (960, 416)),
    "720p": ((1248, 704), (1120, 832), (960, 960), (832, 1120), (704, 1248), (1504, 640)),
    "1080p": ((1920, 1088), (1664, 1248), (1440, 1440), (1248, 1664), (1088, 1920), (2176, 928)),
}
_SIZES_V15: dict[Resolution, tuple[tuple[int, int], ...]] = {
    "480p": ((864, 496), (752, 560), (640, 640), (560, 752), (496, 864), (992, 432)),
    "720p": ((1280, 720), (1112, 834), (960, 960), (834, 1112), (720, 1280), (1470, 630)),
    "1080p": ((1920, 1080), (1664, 1248), (1440, 1440), (1248, 1664), (1080, 1920), (2206, 946)),
}


@dataclass(frozen=True)
class ModelSpec:
    """One Seedance model and everything a request to it may carry."""

    key: str
    """Short stable name, e.g. `1.5-pro`."""
    name: str
    cn_id: str
    byteplus_id: str
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
    sizes: dict[Resolution, tuple[tuple[int, int], ...]]
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
    lifecycle: str | None = None
    """What is known of the model's retirement, with its source; None for a model on sale."""
    durations: tuple[int, ...] | None = None
    """A fixed set of lengths in seconds (gemini-omni: 4, 6, 8, 10), instead of every whole second in the range."""
    family: Literal["seedance", "gemini"] = "seedance"
    """Seedance proper, or another model a gateway sells through its Seedance task API (aiid's gemini-omni)."""

    def model_id(self, region: Region) -> str:
        return self.byteplus_id if region == "byteplus" else self.cn_id

    def size(self, resolution: Resolution, ratio: Ratio) -> tuple[int, int]:
        """Output width and height; `adaptive` is estimated as 16:9 (the real ratio follows the input image)."""
        index = FIXED_RATIOS.index(ratio) if ratio != "adaptive" else 0
        return self.sizes[resolution][index]


_LITE_RETIRED = "discontinued by the provider (a reseller's sunset notice, 2026-04-27); calls may be refused"

_PRO_10 = ModelSpec(
    key="1.0-pro",
    name="Seedance 1.0 pro",
    cn_id="doubao-seedance-1-0-pro-250528",
    byteplus_id="seedance-1-0-pro-250528",
    modes=("text", "first_frame", "first_last_frame"),
    resolutions=RESOLUTIONS,
    default_resolution="1080p",
    t2v_ratios=FIXED_RATIOS,
    i2v_ratios=ALL_RATIOS,
    default_t2v_ratio="16:9",
    default_i2v_ratio="adaptive",
    duration_min=2,
    duration_max=12,
    duration_auto=False,
    frames=True,
    audio=False,
    draft=False,
    camera_fixed=True,
    flex_tier=True,
    sizes=_SIZES_V1,
    typical_render_seconds=50.0,
    aliases=("doubao-seedance-1-0-pro", "seedance-1-0-pro", "seedance-1.0-pro"),
)

_V2_REFERENCE_NOTES = ("Rejects real human faces in references.",)

MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        key="2.5",
        name="Seedance 2.5",
        cn_id="doubao-seedance-2-5-260628",
        byteplus_id="dreamina-seedance-2-5-260628",
        modes=("text", "first_frame", "first_last_frame", "multimodal_reference"),
        resolutions=RESOLUTIONS,
        default_resolution="720p",
        t2v_ratios=ALL_RATIOS,
        i2v_ratios=ALL_RATIOS,
        default_t2v_ratio="adaptive",
        default_i2v_ratio="adaptive",
        duration_min=4,
        duration_max=30,
        duration_auto=True,
        frames=False,
        audio=True,
        draft=False,
        camera_fixed=False,
        flex_tier=False,
        sizes=_SIZES_V15,
        typical_render_seconds=150.0,
        max_reference_images=30,
        max_reference_videos=10,
        max_reference_audios=10,
        reference_resolutions=RESOLUTIONS,
        audio_only_references=True,
        frame_modes_need_adaptive=True,
        default_duration_auto=True,
        output_formats=("mp4", "mov"),
        omni_reference_task_types=("auto", "reference", "edit", "extend"),
        priority=True,
        notes=(
            *_V2_REFERENCE_NOTES,
            "4-30 s; the provider's default length is -1 (model picks, billed on the real length), so this server "
            "always sends 5 s unless you pass duration=-1.",
            "Edit or extend a video: one reference_videos item and omni_reference_task_type=edit|extend "
            "(edit keeps the input's ratio and length).",
            "First-frame requests use ratio adaptive. 1080p is H.265.",
        ),
        aliases=("doubao-seedance-2-5", "seedance-2-5", "seedance-2.5", "dreamina-seedance-2-5"),
    ),
    ModelSpec(
        key="2.0-mini",
        name="Seedance 2.0 mini",
        cn_id="doubao-seedance-2-0-mini-260615",
        byteplus_id="dreamina-seedance-2-0-mini-260615",
        modes=("text", "first_frame", "first_last_frame", "multimodal_reference"),
        resolutions=("480p", "720p"),
        default_resolution="720p",
        t2v_ratios=ALL_RATIOS,
        i2v_ratios=ALL_RATIOS,
        default_t2v_ratio="adaptive",
        default_i2v_ratio="adaptive",
        duration_min=4,
        duration_max=15,
        duration_auto=True,
        frames=False,
        audio=True,
        draft=False,
        camera_fixed=False,
        flex_tier=False,
        sizes=_SIZES_V15,
        typical_render_seconds=90.0,
        max_reference_images=9,
        max_reference_videos=3,
        max_reference_audios=3,
        reference_resolutions=("480p", "720p"),
        max_reference_video_seconds=15,
        priority=True,
        notes=(*_V2_REFERENCE_NOTES, "About half the price of 2.0; 480p/720p only."),
        aliases=("doubao-seedance-2-0-mini", "seedance-2-0-mini", "seedance-2.0-mini", "dreamina-seedance-2-0-mini"),
    ),
    ModelSpec(
        key="2.0",
        name="Seedance 2.0",
        cn_id="doubao-seedance-2-0-260128",
        byteplus_id="dreamina-seedance-2-0-260128",
        modes=("text", "first_frame", "first_last_frame", "multimodal_reference"),
        resolutions=RESOLUTIONS,
        default_resolution="720p",
        t2v_ratios=ALL_RATIOS,
        i2v_ratios=ALL_RATIOS,
        default_t2v_ratio="adaptive",
        default_i2v_ratio="adaptive",
        duration_min=4,
        duration_max=15,
        duration_auto=True,
        frames=False,
        audio=True,
        draft=False,
        camera_fixed=False,
        flex_tier=False,
        sizes=_SIZES_V15,
        typical_render_seconds=240.0,
        max_reference_images=9,
        max_reference_videos=3,
        max_reference_audios=3,
        reference_resolutions=RESOLUTIONS,
        max_reference_video_seconds=15,
        web_search=True,
        priority=True,
        notes=(
            *_V2_REFERENCE_NOTES,
            "Highest quality of the 2.0 family; slowest (about 4-5 min for 5 s). 1080p on Volcengine since 2026-04.",
        ),
        aliases=("doubao-seedance-2-0", "seedance-2-0", "seedance-2.0", "dreamina-seedance-2-0"),
    ),
    ModelSpec(
        key="2.0-fast",
        name="Seedance 2.0 fast",
        cn_id="doubao-seedance-2-0-fast-260128",
        byteplus_id="dreamina-seedance-2-0-fast-260128",
        modes=("text", "first_frame", "first_last_frame", "multimodal_reference"),
        resolutions=("480p", "720p"),
        default_resolution="720p",
        t2v_ratios=ALL_RATIOS,
        i2v_ratios=ALL_RATIOS,
        default_t2v_ratio="adaptive",
        default_i2v_ratio="adaptive",
        duration_min=4,
        duration_max=15,
        duration_auto=True,
        frames=False,
        audio=True,
        draft=False,
        camera_fixed=False,
        flex_tier=False,
        sizes=_SIZES_V15,
        typical_render_seconds=120.0,
        max_reference_images=9,
        max_reference_videos=3,
        max_reference_audios=3,
        reference_resolutions=("480p", "720p"),
        max_reference_video_seconds=15,
        web_search=True,
        priority=True,
        notes=("No 1080p.",),
        aliases=("doubao-seedance-2-0-fast", "seedance-2-0-fast", "seedance-2.0-fast", "dreamina-seedance-2-0-fast"),
    ),
    ModelSpec(
        key="1.5-pro",
        name="Seedance 1.5 pro",
        cn_id="doubao-seedance-1-5-pro-251215",
        byteplus_id="seedance-1-5-pro-251215",
        modes=("text", "first_frame", "first_last_frame"),
        resolutions=RESOLUTIONS,
        default_resolution="720p",
        t2v_ratios=ALL_RATIOS,
        i2v_ratios=ALL_RATIOS,
        default_t2v_ratio="adaptive",
        default_i2v_ratio="adaptive",
        duration_min=4,
        duration_max=12,
        duration_auto=True,
        frames=False,
        audio=True,
        draft=True,
        camera_fixed=True,
        flex_tier=True,
        sizes=_SIZES_V15,
        typical_render_seconds=75.0,
        notes=(
            "Draft mode: a cheap 480p preview (draft=true); finalise it later with draft_task_id.",
            "Audio on by default (generate_audio).",
        ),
        lifecycle="reported retiring (no new tasks) by one third party, unconfirmed by the provider (2026-11)",
        aliases=("doubao-seedance-1-5-pro", "seedance-1-5-pro", "seedance-1.5-pro"),
    ),
    _PRO_10,
    replace(
        _PRO_10,
        key="1.0-pro-fast",
        name="Seedance 1.0 pro fast",
        cn_id="doubao-seedance-1-0-pro-fast-251015",
        byteplus_id="seedance-1-0-pro-fast-251015",
        modes=("text", "first_frame"),
        resolutions=RESOLUTIONS,
        default_resolution="1080p",
        typical_render_seconds=30.0,
        notes=("Text or first frame only.",),
        aliases=("doubao-seedance-1-0-pro-fast", "seedance-1-0-pro-fast", "seedance-1.0-pro-fast"),
    ),
    replace(
        _PRO_10,
        key="1.0-lite-t2v",
        name="Seedance 1.0 lite (text-to-video)",
        cn_id="doubao-seedance-1-0-lite-t2v-250428",
        byteplus_id="seedance-1-0-lite-t2v-250428",
        modes=("text",),
        resolutions=RESOLUTIONS,
        default_resolution="720p",
        typical_render_seconds=40.0,
        notes=("Text only.",),
        lifecycle=_LITE_RETIRED,
        aliases=("doubao-seedance-1-0-lite-t2v", "seedance-1-0-lite-t2v"),
    ),
    replace(
        _PRO_10,
        key="1.0-lite-i2v",
        name="Seedance 1.0 lite (image-to-video)",
        cn_id="doubao-seedance-1-0-lite-i2v-250428",
        byteplus_id="seedance-1-0-lite-i2v-250428",
        modes=("first_frame", "first_last_frame", "reference_images"),
        resolutions=RESOLUTIONS,
        default_resolution="720p",
        typical_render_seconds=40.0,
        max_reference_images=4,
        reference_resolutions=("480p", "720p"),
        notes=("Needs an image.", "Reference mode: no 1080p, no adaptive ratio, no camera_fixed."),
        lifecycle=_LITE_RETIRED,
        aliases=("doubao-seedance-1-0-lite-i2v", "seedance-1-0-lite-i2v"),
    ),
    # Sold only by aiid, through its Seedance task API (shared/seeds/openai-compatible-videos.txt, "seed 002"). The
    # document names its modes (t2v, r2v, edit) and its lengths (4/6/8/10 s, other lengths "automatically mapped");
    # it says nothing of resolutions, ratios or reference counts: 720p/1080p, 16:9 and 9:16, three reference
    # images and one video are this catalog's conservative choice.
    ModelSpec(
        key="gemini-omni",
        name="Gemini Omni (via aiid)",
        cn_id="gemini-omni",
        byteplus_id="gemini-omni",
        modes=("text", "multimodal_reference"),
        resolutions=("720p", "1080p"),
        default_resolution="720p",
        t2v_ratios=("16:9", "9:16"),
        i2v_ratios=("16:9", "9:16"),
        default_t2v_ratio="16:9",
        default_i2v_ratio="16:9",
        duration_min=4,
        duration_max=10,
        duration_auto=False,
        durations=(4, 6, 8, 10),
        frames=False,
        audio=True,
        draft=False,
        camera_fixed=False,
        flex_tier=False,
        sizes=_SIZES_V15,
        typical_render_seconds=120.0,
        max_reference_images=3,
        max_reference_videos=1,
        reference_resolutions=("720p", "1080p"),
        omni_reference_task_types=("reference", "edit"),
        family="gemini",
        notes=(
            "Not a Seedance model: aiid sells it through the same task API (modes t2v, r2v, edit).",
            "Only 4, 6, 8 or 10 s; the gateway would silently round any other length, so this server refuses it.",
            "References: up to 3 images (r2v). Edit a video: one reference_videos item and "
            "omni_reference_task_type=edit (keeps the video's own length and ratio).",
            "Resolutions, ratios and reference counts are not documented by aiid: 720p/1080p, 16:9/9:16 assumed. "
            "generate_audio is sent as the task API documents it; whether gemini-omni honours it is not said.",
        ),
        aliases=("gemini_omni",),
    ),
)

MODELS_BY_KEY: dict[str, ModelSpec] = {m.key: m for m in MODELS}


@dataclass(frozen=True)
class GatewayLimits:
    """What a gateway's own document narrows beyond the model's limits."""

    durations: tuple[int, ...] | None = None
    resolutions: tuple[Resolution, ...] | None = None
    extra_ratios: tuple[str, ...] = ()
    unsupported: tuple[str, ...] = ()
    """Arguments this gateway has no way to carry: refused, never dropped."""
    fixed_size: bool = False
    """The gateway takes an output size (`WxH`), not a resolution and a ratio: no `adaptive` ratio, no `-1` length."""


@dataclass(frozen=True)
class Preset:
    """A value of SEEDANCE_PROVIDER: a wire dialect, a default base URL, the models it sells."""

    name: str
    dialect: Literal["ark", "gptge", "yescale", "openai", "openai-extended", "aiid"]
    base_url: str | None
    region: Region
    model_keys: tuple[str, ...]
    default_model: str
    cancel: bool
    title: str
    limits: GatewayLimits = GatewayLimits()
    base_url_by_model: dict[str, str] = field(default_factory=lambda: {})
    """Model keys that live under another base URL on this gateway (kkiai serves 2.0 on /api/v3)."""


_ALL = tuple(m.key for m in MODELS if m.family == "seedance")
OPENAI_STRICT_UNSUPPORTED: tuple[str, ...] = (
    "last_frame",
    "reference_images",
    "reference_videos",
    "reference_audios",
    "frames",
    "seed",
    "camera_fixed",
    "watermark",
    "generate_audio",
    "draft",
    "return_last_frame",
    "service_tier",
)
"""The generate_video arguments the `openai` SDK's field set has no way to carry (prompt, model, seconds, size
and a first frame are all it sends)."""
# The create fields Ark added by 2026 (protocol.md §11.2), which the gateways' documents do not carry.
_ARK_2026_FIELDS = (
    "output_format",
    "omni_reference_task_type",
    "web_search",
    "execution_expires_after",
    "priority",
    "draft_task_id",
)
_V1_AND_15 = ("1.5-pro", "1.0-pro", "1.0-pro-fast", "1.0-lite-t2v", "1.0-lite-i2v")

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="ark",
            title="Volcengine Ark (China)",
            dialect="ark",
            base_url="https://ark.cn-beijing.volces.com/api/v3",
            region="cn",
            model_keys=_ALL,
            default_model="1.5-pro",
            cancel=True,
        ),
        Preset(
            name="byteplus",
            title="BytePlus ModelArk (international)",
            dialect="ark",
            base_url="https://ark.ap-southeast.bytepluses.com/api/v3",
            region="byteplus",
            model_keys=_ALL,
            default_model="1.5-pro",
            cancel=True,
        ),
        Preset(
            name="kkiai",
            title="kkiai (Ark passthrough)",
            dialect="ark",
            base_url="https://www.kkiai.com/volc/v1",
            region="cn",
            model_keys=tuple(k for k in _ALL if k not in ("2.5", "2.0-mini")),  # its documents stop at 2.0
            default_model="1.5-pro",
            cancel=False,
            base_url_by_model={"2.0": "https://www.kkiai.com/api/v3", "2.0-fast": "https://www.kkiai.com/api/v3"},
        ),
        Preset(
            name="gptge",
            title="gpt.ge task API",
            dialect="gptge",
            base_url="https://api.gpt.ge",
            region="cn",
            model_keys=_V1_AND_15,
            default_model="1.5-pro",
            cancel=False,
            limits=GatewayLimits(unsupported=("return_last_frame", "service_tier", *_ARK_2026_FIELDS)),
        ),
        Preset(
            name="yescale",
            title="YEScale /seedance/generations",
            dialect="yescale",
            base_url="https://api.yescale.io",
            region="cn",
            model_keys=_V1_AND_15,
            default_model="1.0-pro",
            cancel=False,
            limits=GatewayLimits(
                durations=(5, 10),
                resolutions=("480p", "1080p"),
                extra_ratios=("9:21", "keep_ratio"),
                unsupported=(
                    "frames",
                    "seed",
                    "watermark",
                    "generate_audio",
                    "draft",
                    "return_last_frame",
                    "service_tier",
                    *_ARK_2026_FIELDS,
                ),
            ),
        ),
        Preset(
            name="openai-compatible",
            title="OpenAI-compatible /v1/videos gateway",
            dialect="openai",
            base_url=None,
            region="cn",
            model_keys=_ALL,
            default_model="1.5-pro",
            cancel=True,
            # The field set the official `openai` SDK sends (protocol.md §11.6): prompt, model, seconds, size and a
            # first frame. Everything else is refused rather than dropped.
            limits=GatewayLimits(unsupported=(*OPENAI_STRICT_UNSUPPORTED, *_ARK_2026_FIELDS), fixed_size=True),
        ),
        Preset(
            name="new-api",
            title="new-api gateway /v1/videos (extended fields)",
            dialect="openai-extended",
            base_url=None,
            region="cn",
            model_keys=_ALL,
            default_model="1.5-pro",
            cancel=True,
            # new-api merges `metadata` into the Ark body (protocol.md §9.4); the 2026 fields are not documented.
            limits=GatewayLimits(unsupported=("service_tier", *_ARK_2026_FIELDS)),
        ),
        Preset(
            name="aiid",
            title="aiid Seedance task API (/api/v3/contents/generations/tasks)",
            dialect="aiid",
            base_url="https://api.aiid.edu.kg",
            region="cn",
            # The model ids its document lists, and gemini-omni, which only this gateway sells.
            model_keys=("2.0", "2.0-fast", *_V1_AND_15, "gemini-omni"),
            default_model="2.0",
            cancel=False,
            # Its document names model, prompt, content[], function_mode, mode, the media URL aliases, duration,
            # ratio, resolution, fps, generate_audio and watermark; nothing else has a field there.
            # omni_reference_task_type stays: gemini-omni's edit is sent as `mode: edit` (Seedance 2.0 takes none).
            limits=GatewayLimits(
                unsupported=(
                    "frames",
                    "seed",
                    "camera_fixed",
                    "draft",
                    "return_last_frame",
                    "service_tier",
                    *(f for f in _ARK_2026_FIELDS if f != "omni_reference_task_type"),
                )
            ),
        ),
        Preset(
            name="sandbox",
            title="Embedded sandbox (no key, no cost)",
            dialect="ark",
            base_url=None,
            region="cn",
            model_keys=_ALL,
            default_model="1.5-pro",
            cancel=True,
        ),
    )
}


def find_model(name: str, preset: Preset) -> ModelSpec | None:
    """The catalog entry for a model id, key or alias, if this preset offers it."""
    wanted = name.strip().lower()
    for key in preset.model_keys:
        spec = MODELS_BY_KEY[key]
        if wanted in (spec.key, spec.cn_id, spec.byteplus_id, *spec.aliases):
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
