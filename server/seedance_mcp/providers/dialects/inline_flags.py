"""Inline `--flag value` parameters for the gateways that carry them in the prompt text (protocol.md §3.5).

The flags are built from arguments that validation has already checked, because a gateway silently replaces a
bad flag value with its default.
"""

from __future__ import annotations

from collections.abc import Mapping

from seedance_mcp.wire import VideoRequest

LONG_NAMES: Mapping[str, str] = {
    "resolution": "--resolution",
    "ratio": "--ratio",
    "duration": "--duration",
    "frames": "--frames",
    "seed": "--seed",
    "camera_fixed": "--camerafixed",
    "watermark": "--watermark",
}


def _flag_value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def inline_flags(request: VideoRequest, names: Mapping[str, str]) -> str:
    """`--name value` for every given argument that has a flag in `names`, in the order of `names`."""
    pairs = ((flag, getattr(request, field)) for field, flag in names.items())
    return " ".join(f"{flag} {_flag_value(value)}" for flag, value in pairs if value is not None)


def prompt_with_flags(request: VideoRequest, names: Mapping[str, str]) -> str:
    flags = inline_flags(request, names)
    return f"{request.prompt} {flags}" if flags else request.prompt
