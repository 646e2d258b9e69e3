"""Every argument lands where each gateway's document says: Ark body fields, inline flags, OpenAI fields."""

from __future__ import annotations

from typing import Any

import pytest

from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers.dialects.openai_videos import OpenAIVideosDialect
from seedance_mcp.requests import VideoArguments
from seedance_mcp.validation import validate_request

IMG1, IMG2 = "https://e.com/first.png", "https://e.com/last.png"


def build(preset: str, base: str = "https://gw.example", **kwargs: Any) -> tuple[str, str, dict[str, Any]]:
    p = PRESETS[preset]
    arguments: dict[str, Any] = {"prompt": "a kitten yawns", **kwargs}
    request = validate_request(VideoArguments(**arguments), p, p.default_model)
    http = dialect_for(p.dialect).create_request(request, base)
    assert http.json_body is not None
    return http.method, http.url, http.json_body


def test_ark_maps_every_argument_to_its_body_field() -> None:
    method, url, body = build(
        "ark",
        base="https://ark.cn-beijing.volces.com/api/v3",
        model="1.0-pro",
        first_frame=IMG1,
        last_frame=IMG2,
        resolution="1080p",
        ratio="adaptive",
        frames=121,
        seed=11,
        camera_fixed=True,
        watermark=False,
        return_last_frame=True,
        service_tier="flex",
    )
    assert (method, url) == ("POST", "https://ark.cn-beijing.volces.com/api/v3/contents/generations/tasks")
    assert body == {
        "model": "doubao-seedance-1-0-pro-250528",
        "content": [
            {"type": "text", "text": "a kitten yawns"},
            {"type": "image_url", "image_url": {"url": IMG1}, "role": "first_frame"},
            {"type": "image_url", "image_url": {"url": IMG2}, "role": "last_frame"},
        ],
        "resolution": "1080p",
        "ratio": "adaptive",
        "frames": 121,
        "seed": 11,
        "camera_fixed": True,
        "watermark": False,
        "return_last_frame": True,
        "service_tier": "flex",
    }


def test_ark_sends_audio_draft_and_duration_for_1_5_pro() -> None:
    _, _, body = build("ark", model="1.5-pro", duration=-1, generate_audio=False, draft=True)
    assert body == {
        "model": "doubao-seedance-1-5-pro-251215",
        "content": [{"type": "text", "text": "a kitten yawns"}],
        "resolution": "480p",
        "duration": -1,
        "generate_audio": False,
        "draft": True,
    }


def test_ark_carries_2_0_multimodal_references_with_roles() -> None:
    _, _, body = build(
        "byteplus",
        model="2.0",
        reference_images=[IMG1],
        reference_videos=["https://e.com/v.mp4"],
        reference_audios=["https://e.com/a.mp3"],
    )
    assert body["model"] == "dreamina-seedance-2-0-260128"
    assert body["content"][1:] == [
        {"type": "image_url", "image_url": {"url": IMG1}, "role": "reference_image"},
        {"type": "video_url", "video_url": {"url": "https://e.com/v.mp4"}, "role": "reference_video"},
        {"type": "audio_url", "audio_url": {"url": "https://e.com/a.mp3"}, "role": "reference_audio"},
    ]


def test_an_argument_left_out_is_not_sent() -> None:
    """Only the last frame is asked for unasked on Ark: it is free there, and it is the result's picture."""
    _, _, body = build("ark")
    assert body == {
        "model": "doubao-seedance-2-0-mini-260615",  # the ark preset's default since 1.5 pro retired (issue 16)
        "content": [{"type": "text", "text": "a kitten yawns"}],
        "return_last_frame": True,
    }


def test_gptge_puts_parameters_in_short_inline_flags_and_audio_in_the_body() -> None:
    method, url, body = build(
        "gptge",
        model="1.5-pro",
        first_frame=IMG1,
        resolution="720p",
        ratio="16:9",
        duration=5,
        seed=11,
        camera_fixed=False,
        watermark=True,
        generate_audio=False,
    )
    assert (method, url) == ("POST", "https://gw.example/task/volces/seedance")
    assert body == {
        "model": "doubao-seedance-1-5-pro-251215",
        "content": [
            {"type": "text", "text": "a kitten yawns --rs 720p --ratio 16:9 --dur 5 --seed 11 --cf false --wm true"},
            # gpt.ge's image-to-video is "text + image_url": roles only for first/last-frame videos.
            {"type": "image_url", "image_url": {"url": IMG1}},
        ],
        "generate_audio": False,
    }


def test_yescale_puts_its_four_documented_flags_in_the_prompt() -> None:
    method, url, body = build("yescale", resolution="480p", duration=5, ratio="keep_ratio", camera_fixed=True)
    assert (method, url) == ("POST", "https://gw.example/seedance/generations")
    assert body == {
        "model": "doubao-seedance-1-0-pro-250528",
        "content": [
            {
                "type": "text",
                "text": "a kitten yawns --resolution 480p --duration 5 --ratio keep_ratio --camerafixed true",
            }
        ],
    }


def test_openai_compatible_sends_the_official_sdks_field_set() -> None:
    """prompt, model, seconds as a string, size as WxH from the catalog, a first frame as input_reference."""
    method, url, body = build(
        "openai-compatible", model="1.0-pro", first_frame=IMG1, resolution="720p", ratio="4:3", duration=8
    )
    assert (method, url) == ("POST", "https://gw.example/v1/videos")
    assert body == {
        "model": "doubao-seedance-1-0-pro-250528",
        "prompt": "a kitten yawns",
        "seconds": "8",
        "size": "1120x832",
        "input_reference": {"image_url": IMG1},
    }


def test_openai_compatible_size_uses_the_models_own_size_table_and_default_resolution() -> None:
    """1.5 pro at its default 720p and 9:16 is 720x1280; the 1.0 table differs (704x1248)."""
    assert build("openai-compatible", model="1.5-pro", ratio="9:16")[2]["size"] == "720x1280"
    assert build("openai-compatible", model="1.0-pro", resolution="720p", ratio="9:16")[2]["size"] == "704x1248"
    assert "size" not in build("openai-compatible")[2]


def test_openai_compatible_base_url_may_end_in_v1() -> None:
    """A base URL pasted with its /v1 does not become /v1/v1/videos."""
    dialect = dialect_for("openai")
    for base in ("https://gw.example/v1", "https://gw.example/v1/", "https://gw.example"):
        assert build("openai-compatible", base=base)[1] == "https://gw.example/v1/videos"
        assert dialect.status_request("T", base).url == "https://gw.example/v1/videos/T"
        cancel = dialect.cancel_request("T", base)
        assert cancel is not None and cancel.url == "https://gw.example/v1/videos/T"
    assert OpenAIVideosDialect().content_url("T", "https://gw.example/v1") == "https://gw.example/v1/videos/T/content"


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("seed", 5),
        ("camera_fixed", False),
        ("watermark", True),
        ("return_last_frame", True),
        ("reference_images", [IMG1]),
        ("ratio", "adaptive"),
        ("duration", -1),
    ],
)
def test_openai_compatible_strict_set_refuses_what_it_cannot_carry(argument: str, value: Any) -> None:
    """Nothing is silently dropped: an argument with no field in the SDK's set is an InvalidArgument."""
    model = "2.0" if argument == "reference_images" else "1.0-pro" if argument == "camera_fixed" else "1.5-pro"
    with pytest.raises(InvalidArgument) as refused:
        build("openai-compatible", model=model, **{argument: value})
    assert refused.value.argument == argument


def extended(**kwargs: Any) -> dict[str, Any]:
    p = PRESETS["new-api"]
    request = validate_request(VideoArguments(prompt="a kitten yawns", **kwargs), p, p.default_model)
    body = OpenAIVideosDialect(extended=True).create_request(request, "https://gw.example").json_body
    assert body is not None
    return body


def test_openai_extended_uses_the_aiid_fields_and_metadata_for_the_rest() -> None:
    """The extended set (aiid / new-api gateways): mode, aspect_ratio, image URLs, the rest in metadata."""
    body = extended(
        model="1.0-pro",
        first_frame=IMG1,
        last_frame=IMG2,
        resolution="720p",
        ratio="4:3",
        duration=8,
        seed=5,
        camera_fixed=True,
        watermark=False,
        return_last_frame=True,
    )
    assert body == {
        "model": "doubao-seedance-1-0-pro-250528",
        "prompt": "a kitten yawns",
        "mode": "i2v_first_last",
        "seconds": "8",
        "aspect_ratio": "4:3",
        "resolution": "720p",
        "image_url": IMG1,
        "end_image_url": IMG2,
        "watermark": False,
        "metadata": {"seed": 5, "camera_fixed": True, "return_last_frame": True},
    }


def test_openai_extended_references_become_url_lists() -> None:
    """References travel as image_urls, video_urls and audio_urls with mode reference_material."""
    body = extended(
        model="2.0",
        reference_images=[IMG1, IMG2],
        reference_videos=["https://e.com/v.mp4"],
        reference_audios=["https://e.com/a.mp3"],
        generate_audio=True,
    )
    assert body == {
        "model": "doubao-seedance-2-0-260128",
        "prompt": "a kitten yawns",
        "mode": "reference_material",
        "image_urls": [IMG1, IMG2],
        "video_urls": ["https://e.com/v.mp4"],
        "audio_urls": ["https://e.com/a.mp3"],
        "generate_audio": True,
    }


def test_status_and_cancel_paths_per_dialect() -> None:
    expectations = {
        "ark": ("https://b/contents/generations/tasks/T", "https://b/contents/generations/tasks/T"),
        "gptge": ("https://b/task/T", None),
        "yescale": ("https://b/seedance/generations/T", None),
        "openai": ("https://b/v1/videos/T", "https://b/v1/videos/T"),
    }
    for name, (status_url, cancel_url) in expectations.items():
        dialect = dialect_for(name)
        assert dialect.status_request("T", "https://b").url == status_url
        cancel = dialect.cancel_request("T", "https://b")
        assert (cancel.url if cancel else None) == cancel_url
        assert cancel is None or cancel.method == "DELETE"
