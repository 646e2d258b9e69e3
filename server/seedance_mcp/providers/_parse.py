"""The parsing helpers every dialect shares: pure functions from a provider's JSON to our words and numbers."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from seedance_mcp.errors import UnexpectedResponse, trim
from seedance_mcp.models import TaskStatus

# Every status word protocol.md §5 lists, across Ark, gpt.ge, kkiai, new-api and OpenAI.
_STATUS_WORDS: dict[str, TaskStatus] = {
    "queued": "queued",
    "pending": "queued",
    "submitted": "queued",
    "not_start": "queued",
    "running": "running",
    "processing": "running",
    "in_progress": "running",
    "succeeded": "succeeded",
    "success": "succeeded",
    "completed": "succeeded",
    "failed": "failed",
    "failure": "failed",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "expired": "expired",
}


def normalize_status(raw: object, provider: str, body: Any) -> TaskStatus:
    word = str(raw).strip().lower() if raw is not None else ""
    status = _STATUS_WORDS.get(word)
    if status is None:
        raise UnexpectedResponse(provider, f"unknown task status {raw!r}", quote(body))
    return status


def quote(body: Any) -> str:
    """A provider body as a short one-line string for an error message."""
    import json

    try:
        text = body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(body)
    return trim(text)


def dig(body: Any, *path: str | int) -> Any:
    """body[path0][path1]… or None when any step is missing or of the wrong type."""
    current = body
    for key in path:
        if isinstance(key, int):
            if not isinstance(current, list) or len(current) <= key:  # pyright: ignore[reportUnknownArgumentType]
                return None
            current = current[key]  # pyright: ignore[reportUnknownVariableType]
        else:
            if not isinstance(current, dict):
                return None
            current = current.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return current  # pyright: ignore[reportUnknownVariableType]


def first_of(body: Any, *paths: tuple[str | int, ...]) -> Any:
    for path in paths:
        value = dig(body, *path)
        if value not in (None, ""):
            return value
    return None


def as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value.strip())
    return None


def as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def as_epoch_seconds(value: Any) -> float | None:
    """A timestamp in seconds, whether it came as seconds, milliseconds (values above ~10^12) or ISO 8601."""
    number = as_float(value)
    if number is None and isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    if number is None:
        return None
    return number / 1000 if number > 1e11 else number


def signed_url_expiry(url: str) -> float | None:
    """When a TOS / S3 style signed URL stops working, from its own query (X-Tos-Date + X-Tos-Expires)."""
    query = {k.lower(): v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    date = query.get("x-tos-date") or query.get("x-amz-date")
    expires = as_float(query.get("x-tos-expires") or query.get("x-amz-expires"))
    if date and expires is not None:
        try:
            signed = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            return None
        return signed.timestamp() + expires
    return as_epoch_seconds(query.get("expires"))


def require_task_id(body: Any, provider: str) -> str:
    """The task id of a create answer, wherever the gateway put it (`id`, `task_id`, `data.task_id`, `data.id`)."""
    value = first_of(body, ("id",), ("task_id",), ("data", "task_id"), ("data", "id"))
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    raise UnexpectedResponse(provider, "no task id in the create answer", quote(body))
