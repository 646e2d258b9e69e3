"""Logging to stderr only (stdout is the MCP channel on stdio), with every secret scrubbed from every record."""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterable

from seedance_mcp.errors import redact


class RedactSecrets(logging.Filter):
    """Replaces each secret, and each fragment of one (8+ characters in a row), in a record with `***`.

    The message is rendered with its arguments first, and a traceback is formatted to text, so a key inside an
    argument or an exception's message is caught too; the record keeps only the scrubbed text.
    """

    def __init__(self, secrets: Iterable[str | None]) -> None:
        super().__init__()
        self._secrets = [s for s in secrets if s and len(s) >= 4]

    def _scrub(self, text: str) -> str:
        return redact(text, *self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg, record.args = self._scrub(record.getMessage()), None
        if record.exc_info and record.exc_info[1] is not None:
            text = record.exc_text or "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_info, record.exc_text = None, self._scrub(text)
        elif record.exc_text:
            record.exc_text = self._scrub(record.exc_text)
        if record.stack_info:
            record.stack_info = self._scrub(record.stack_info)
        return True


def configure_logging(level: str, secrets: Iterable[str | None] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "mcp.server.lowlevel.server"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
