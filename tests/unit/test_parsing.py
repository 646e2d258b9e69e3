"""Response parsing survives every shape protocol.md lists, and fails on the unknown with a quote, not a trace."""

from __future__ import annotations

import pytest

from seedance_mcp.errors import UnexpectedResponse
from seedance_mcp.providers import dialect_for
from seedance_mcp.providers._parse import as_epoch_seconds, signed_url_expiry

ARK_SUCCEEDED = {
    "id": "cgt-20260514183217-t8rzv",
    "model": "doubao-seedance-2-0-260128",
    "status": "succeeded",
    "content": {
        "video_url": "https://tos.example/v.mp4?X-Tos-Date=20260514T183705Z&X-Tos-Expires=86400",
        "last_frame_url": "https://tos.example/f.png",
    },
    "usage": {"completion_tokens": 108900, "total_tokens": 108900},
    "created_at": 1778754737,
    "updated_at": 1778755025,
    "resolution": "720p",
    "ratio": "16:9",
    "duration": 5,
    "seed": 42,
}


@pytest.mark.parametrize(
    "body",
    [
        {"id": "cgt-1"},
        {"id": "cgt-1", "status": "submitted"},
        {"task_id": "cgt-1"},
        {"code": 0, "message": "SUCCEED", "data": {"task_id": "cgt-1", "task_status": "submitted"}},
        {"id": "cgt-1", "message": "YEScale - Seedance Video Generation - Submit"},
    ],
)
def test_a_create_answer_may_carry_the_id_in_any_documented_place(body: object) -> None:
    for name in ("ark", "gptge", "yescale", "openai"):
        assert dialect_for(name).parse_created(body) == "cgt-1"


def test_a_create_answer_without_an_id_is_quoted() -> None:
    with pytest.raises(UnexpectedResponse, match="no task id") as caught:
        dialect_for("ark").parse_created({"ok": True})
    assert '"ok": true' in str(caught.value)


def test_the_ark_task_is_read_whole() -> None:
    task = dialect_for("ark").parse_task(ARK_SUCCEEDED, "cgt-20260514183217-t8rzv")
    assert task.status == "succeeded"
    assert task.video_url == ARK_SUCCEEDED["content"]["video_url"]  # type: ignore[index]
    assert task.video_url_expires_at == as_epoch_seconds("2026-05-15T18:37:05Z")
    assert task.last_frame_url == "https://tos.example/f.png"
    assert (task.usage_tokens, task.resolution, task.ratio, task.duration, task.seed) == (108900, "720p", "16:9", 5, 42)


def test_a_failed_ark_task_keeps_its_error_code() -> None:
    body = {
        "id": "cgt-1",
        "status": "failed",
        "error": {"code": "OutputAudioSensitiveContentDetected", "message": "may contain sensitive information"},
    }
    task = dialect_for("ark").parse_task(body, "cgt-1")
    assert (task.status, task.error_code) == ("failed", "OutputAudioSensitiveContentDetected")


@pytest.mark.parametrize(
    ("word", "status"),
    [
        ("queued", "queued"),
        ("submitted", "queued"),
        ("pending", "queued"),
        ("running", "running"),
        ("processing", "running"),
        ("in_progress", "running"),
        ("succeeded", "succeeded"),
        ("completed", "succeeded"),
        ("failed", "failed"),
        ("cancelled", "cancelled"),
        ("expired", "expired"),
    ],
)
def test_every_documented_status_word_maps(word: str, status: str) -> None:
    assert dialect_for("ark").parse_task({"id": "t", "status": word}, "t").status == status
    assert dialect_for("openai").parse_task({"id": "t", "status": word}, "t").status == status


def test_an_unknown_status_fails_with_what_came_back() -> None:
    with pytest.raises(UnexpectedResponse, match="levitating"):
        dialect_for("ark").parse_task({"id": "t", "status": "levitating"}, "t")
    with pytest.raises(UnexpectedResponse, match="not a JSON object"):
        dialect_for("ark").parse_task(["nope"], "t")


def test_gptge_status_may_come_wrapped_in_its_envelope() -> None:
    body = {"code": 0, "data": {"task_id": "cgt-1", "task_status": "succeeded", "content": {"video_url": "https://v"}}}
    task = dialect_for("gptge").parse_task(body, "cgt-1")
    assert (task.status, task.video_url) == ("succeeded", "https://v")


def test_openai_video_objects_in_every_shape() -> None:
    dialect = dialect_for("openai")
    plain = dialect.parse_task({"id": "video_1", "object": "video", "status": "in_progress", "progress": 40}, "video_1")
    assert (plain.status, plain.progress, plain.video_url) == ("running", 40.0, None)
    new_api = dialect.parse_task(
        {"id": "task_1", "status": "completed", "metadata": {"url": "https://cdn/v.mp4"}, "usage": {"total_tokens": 9}},
        "task_1",
    )
    assert (new_api.video_url, new_api.usage_tokens) == ("https://cdn/v.mp4", 9)
    top = dialect.parse_task({"id": "v", "status": "completed", "video_url": "https://cdn/top.mp4"}, "v")
    assert top.video_url == "https://cdn/top.mp4"
    items = dialect.parse_task(
        {"id": "task_2", "items": [{"status": "succeeded", "content": {"video_url": "https://cdn/i.mp4"}}]}, "task_2"
    )
    assert (items.status, items.video_url) == ("succeeded", "https://cdn/i.mp4")
    flat_items = dialect.parse_task({"id": "task_3", "items": [{"status": "failed", "error": {"code": "X"}}]}, "t")
    assert (flat_items.status, flat_items.error_code) == ("failed", "X")


def test_timestamps_in_seconds_milliseconds_or_iso() -> None:
    assert as_epoch_seconds(1727338013674) == pytest.approx(1727338013.674)
    assert as_epoch_seconds(1727338013) == 1727338013
    assert as_epoch_seconds("2024-09-26T08:06:53Z") == 1727338013
    assert signed_url_expiry("https://x/v.mp4?X-Tos-Date=20250331T175019Z&X-Tos-Expires=86400") == as_epoch_seconds(
        "2025-04-01T17:50:19Z"
    )
