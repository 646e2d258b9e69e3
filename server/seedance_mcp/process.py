"""Process-wide settings the command line applies before it serves. Never applied on import nor by `create_app`:
a host process that embeds the server keeps its own."""

from __future__ import annotations

import gc


def tune_garbage_collector() -> None:
    """Fewer, cheaper garbage collections for a long-running server.

    What is alive once the server is built (modules, schemas, the app) moves to the permanent generation, so full
    collections stop walking it; and a young collection waits for 10,000 new objects instead of 700. Measured on
    bench #7 (2,000 jobs at once): collections took 1.3-1.7 s of CPU before, 0.35-0.56 s after.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
