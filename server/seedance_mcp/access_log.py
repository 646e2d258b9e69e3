"""Keeps credentials out of uvicorn's logs: its access log prints every request's full path, query string included,
so `GET /mcp?token=…` would land in the log (and in whatever collects it)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote_plus

MASK = "***"

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")

_SECRET_WORDS = frozenset(
    {"token", "access_token", "refresh_token", "id_token", "api_key", "apikey", "key", "secret", "password",
     "passwd", "pwd", "auth", "authorization", "sig", "signature", "credential", "credentials", "session"}
)  # fmt: skip
_SECRET_PARTS = ("token", "secret", "passw", "apikey", "api_key", "api-key", "signature", "credential")

# `?name=value` / `&name=value` / `;name=value` in a URL, up to the next separator, space or quote.
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[^=&;?#\s\"'<>]+)=(?P<value>[^&;#\s\"'<>]*)")
# `Authorization: Bearer x`, `X-Api-Key: x`, `"authorization": "x"`, `Cookie: x`; then any `Bearer x`.
_HEADER_VALUE = re.compile(
    r"(?P<name>\b(?:proxy-)?authorization|\bx-api-key|\bapi-key|\bcookie)(?P<sep>[\"']?\s*[:=]\s*[\"']?)"
    r"(?P<value>(?:(?:bearer|basic|token)\s+)?[^\s\"',;]+)",
    re.IGNORECASE,
)
_SCHEME_VALUE = re.compile(r"\b(?P<scheme>bearer)\s+(?P<value>[A-Za-z0-9._~+/=:-]{4,})", re.IGNORECASE)


def secret_name(name: str) -> bool:
    """Whether a query parameter's name looks like it carries a credential (`token`, `api_key`, `X-Amz-Signature`…)."""
    lowered = unquote_plus(name).strip().lower()
    if lowered in _SECRET_WORDS or any(part in lowered for part in _SECRET_PARTS):
        return True
    words = [w for w in re.split(r"[^a-z0-9]+", lowered) if w]
    return bool(words) and (words[-1] in _SECRET_WORDS or words[0] in ("auth", "sig"))


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with secret-looking query values, Authorization-like values and the given secrets masked."""
    for secret in secrets:
        for form in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}:
            text = text.replace(form, MASK)

    def query(match: re.Match[str]) -> str:
        if not match["value"] or not secret_name(match["name"]):
            return match[0]
        return f"{match['lead']}{match['name']}={MASK}"

    text = _QUERY_PARAM.sub(query, text)
    text = _HEADER_VALUE.sub(lambda m: f"{m['name']}{m['sep']}{MASK}", text)
    return _SCHEME_VALUE.sub(lambda m: f"{m['scheme']} {MASK}", text)


class MaskCredentials(logging.Filter):
    """Renders a record's message with credentials masked (query parameters, Authorization values, known secrets)."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        masked = mask_text(message, self._secrets)
        if masked != message:
            record.msg, record.args = masked, None
        if "color_message" in record.__dict__:  # uvicorn's coloured copy of the message, used by its own formatter
            record.__dict__.pop("color_message")
        return True


def protect_uvicorn_logs(secrets: Iterable[str | None] = (), extra: Iterable[logging.Filter] = ()) -> None:
    """Attach `MaskCredentials` (and `extra` filters, e.g. the configured `RedactSecrets`) to uvicorn's loggers and
    their handlers. Logger filters only see records logged on that very logger, hence each one is listed."""
    masking = MaskCredentials(secrets)
    filters: list[logging.Filter] = [masking, *extra]
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        for flt in filters:
            if flt not in logger.filters:
                logger.addFilter(flt)
        for handler in logger.handlers:
            for flt in filters:
                if flt not in handler.filters:
                    handler.addFilter(flt)
