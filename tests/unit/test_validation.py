"""Validation edges per model and per gateway: everything refused here never reaches a provider."""

from __future__ import annotations

from typing import Any

import pytest

from seedance_mcp.catalog import PRESETS
from seedance_mcp.errors import InvalidArgument
from seedance_mcp.requests import VideoArguments
from seedance_mcp.validation import validate_request

ARK = PRESETS["ark"]


def check(preset: str = "ark", **kwargs: Any) -> Any:
    arguments: dict[str, Any] = {"prompt": "a cat", **kwargs}
    args = VideoArguments(**arguments)
    return validate_request(args, PRESETS[preset], PRESETS[preset].default_model)


def refused(preset: str = "ark", **kwargs: Any) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        check(preset, **kwargs)
    return caught.value


@pytest.mark.parametrize(
    ("model", "good", "bad"),
    [
        ("1.0-pro", [2, 12], [1, 13, -1]),
        ("1.0-lite-t2v", [2, 12], [1, 13]),
        ("1.5-pro", [4, 12, -1], [3, 13]),
        ("2.0", [4, 15, -1], [3, 16]),
        ("2.0-fast", [4, 15, -1], [2, 16]),
    ],
)
def test_duration_ranges_follow_each_model(model: str, good: list[int], bad: list[int]) -> None:
    for duration in good:
        check(model=model, duration=duration)
    for duration in bad:
        error = refused(model=model, duration=duration)
        assert error.argument == "duration"
        assert error.allowed and str(good[0]) in error.allowed


def test_frames_must_be_25_plus_4n_and_only_on_1_0_models() -> None:
    assert check(model="1.0-pro", frames=29).effective_seconds == pytest.approx(29 / 24)
    check(model="1.0-pro", frames=289)
    for frames in (25, 30, 293):
        assert refused(model="1.0-pro", frames=frames).argument == "frames"
    error = refused(model="1.5-pro", frames=29)
    assert error.argument == "frames" and "duration" in str(error)
    assert refused(model="1.0-pro", frames=29, duration=5).argument == "frames"


def test_draft_is_1_5_pro_only_at_480p_without_last_frame() -> None:
    request = check(model="1.5-pro", draft=True)
    assert request.resolution == "480p"  # sent explicitly: the provider's default 720p is refused for drafts
    assert refused(model="1.5-pro", draft=True, resolution="720p").argument == "resolution"
    assert refused(model="1.0-pro", draft=True).argument == "draft"
    assert refused(model="1.5-pro", draft=True, return_last_frame=True).argument == "return_last_frame"
    assert refused(model="1.5-pro", draft=True, service_tier="flex").argument == "service_tier"


def test_resolutions_per_model() -> None:
    check(model="2.0", resolution="1080p")
    error = refused(model="2.0-fast", resolution="1080p")
    assert error.argument == "resolution" and error.allowed == "480p, 720p"


def test_modes_per_model() -> None:
    image = "https://example.com/a.png"
    assert refused(model="1.0-lite-i2v").argument == "first_frame"  # needs an image
    assert refused(model="1.0-lite-t2v", first_frame=image).argument == "first_frame"
    error = refused(model="1.0-pro-fast", first_frame=image, last_frame=image)
    assert error.argument == "last_frame" and "doubao-seedance-1-0-pro" in str(error)
    assert check(model="1.0-pro-fast", first_frame=image).mode == "first_frame"
    assert check(model="1.0-lite-i2v", reference_images=[image]).mode == "reference_images"
    assert check(model="2.0", reference_images=[image]).mode == "multimodal_reference"
    assert refused(model="1.5-pro", reference_images=[image]).argument == "reference_images"
    assert refused(last_frame=image).argument == "last_frame"
    assert refused(model="2.0", first_frame=image, reference_images=[image]).argument == "reference_images"


def test_reference_limits() -> None:
    image, video, audio = "https://e.com/a.png", "https://e.com/v.mp4", "https://e.com/a.mp3"
    check(model="2.0", reference_images=[image] * 9, reference_videos=[video] * 3, reference_audios=[audio] * 3)
    assert refused(model="2.0", reference_images=[image] * 10).argument == "reference_images"
    assert refused(model="2.0", reference_videos=[video] * 4).argument == "reference_videos"
    assert refused(model="2.0", reference_audios=[audio]).argument == "reference_audios"  # never alone
    assert refused(model="1.0-lite-i2v", reference_images=[image] * 5).argument == "reference_images"


def test_reference_mode_of_lite_has_no_1080p_adaptive_or_camera_fixed() -> None:
    refs: dict[str, Any] = {"model": "1.0-lite-i2v", "reference_images": ["https://e.com/a.png"]}
    assert refused(**refs, resolution="1080p").argument == "resolution"
    assert refused(**refs, ratio="adaptive").argument == "ratio"
    assert refused(**refs, camera_fixed=True).argument == "camera_fixed"


def test_ratios_and_camera_fixed_per_model() -> None:
    assert refused(model="1.0-pro", ratio="adaptive").argument == "ratio"  # adaptive t2v only on 1.5 pro / 2.0
    check(model="1.5-pro", ratio="adaptive")
    check(model="1.0-pro", ratio="adaptive", first_frame="https://e.com/a.png")
    assert refused(model="2.0", camera_fixed=True).argument == "camera_fixed"
    assert refused(model="1.0-pro", generate_audio=True).argument == "generate_audio"
    assert refused(model="2.0", service_tier="flex").argument == "service_tier"
    assert refused(seed=2**32).argument == "seed"


def test_inline_flags_in_the_prompt_are_refused_and_the_argument_named() -> None:
    error = refused(prompt="a cat --dur 10")
    assert error.argument == "prompt" and "`duration`" in str(error)
    check(prompt="a cat -- running fast")  # a double dash alone is prose


def test_unknown_models_list_what_the_provider_offers() -> None:
    error = refused(model="doubao-seedance-9-9")
    assert error.argument == "model" and "doubao-seedance-2-0-260128" in (error.allowed or "")
    assert refused("gptge", model="2.0").argument == "model"  # gpt.ge sells no 2.0


def test_byteplus_uses_byteplus_ids() -> None:
    assert check("byteplus", model="1.0-pro").model_id == "seedance-1-0-pro-250528"
    assert check("byteplus", model="doubao-seedance-2-0-260128").model_id == "dreamina-seedance-2-0-260128"


def test_yescale_enforces_its_documented_flags() -> None:
    check("yescale", duration=10, resolution="1080p", ratio="9:21")
    assert refused("yescale", duration=6).allowed == "5, 10"
    assert refused("yescale", resolution="720p").allowed == "480p, 1080p"
    for argument, value in (("seed", 3), ("watermark", True), ("frames", 29), ("return_last_frame", True)):
        error = refused("yescale", **{argument: value})
        assert error.argument == argument and "no way to send it" in str(error)


def test_gptge_refuses_what_it_cannot_carry() -> None:
    assert refused("gptge", return_last_frame=True).argument == "return_last_frame"
    check("gptge", seed=7, watermark=True, camera_fixed=False)


def test_token_estimate_uses_the_real_output_size() -> None:
    assert check(model="1.5-pro", resolution="720p", ratio="16:9", duration=5).estimated_tokens == 108900
    assert check(model="1.0-pro", resolution="1080p", ratio="16:9", duration=5).estimated_tokens == 246840


@pytest.mark.parametrize(
    "prompt",
    [
        "a cat --DUR 10",
        "a cat --Duration 10",
        "a cat x--dur 10",
        "一只猫，--dur 10",
        "a cat --RS 1080p",
        "a cat.--rs 1080p",
        "--seed 7 a cat",
        "a cat --fps 24",
        "a cat --CameraFixed true",
        "a cat (--wm=false)",
    ],
)
def test_inline_flags_are_refused_in_any_case_and_after_any_character(prompt: str) -> None:
    """A flag-reading gateway would bill or render by these; case and the character before `--` do not matter."""
    error = refused(prompt=prompt)
    assert error.argument == "prompt" and "inline flag" in str(error)


@pytest.mark.parametrize(
    "prompt", ["a cat -- running fast", "--dramatic lighting", "a durable --durable cat", "a cat --- then a dog", "—"]
)
def test_dashes_and_words_that_are_not_flag_names_are_prose(prompt: str) -> None:
    """Only the flag names of protocol.md §3.5 followed by a word boundary are refused."""
    check(prompt=prompt)


def test_an_empty_model_is_refused_with_the_known_ids() -> None:
    """`model: ""` does not silently mean the default model."""
    for model in ("", "   "):
        error = refused(model=model)
        assert error.argument == "model" and "doubao-seedance-1-5-pro-251215" in (error.allowed or "")


def test_frames_with_references_name_the_reference_argument_actually_given() -> None:
    """Mixing a frame with reference videos or audios names that argument, not reference_images."""
    image, video, audio = "https://e.com/a.png", "https://e.com/v.mp4", "https://e.com/a.mp3"
    assert refused(model="2.0", first_frame=image, reference_videos=[video]).argument == "reference_videos"
    assert refused(model="2.0", first_frame=image, reference_audios=[audio]).argument == "reference_audios"
    assert refused(model="1.5-pro", reference_videos=[video]).argument == "reference_videos"
