"""BatchedThread: blocking work queued from the event loop and run in one worker thread, many calls per trip.

Under load (thousands of jobs saving files or writing the journal at once) a trip to a worker thread per call costs
more than the call: the thread waits for the GIL of a busy event loop once per trip. Here one trip carries every
call queued by then, so the trips stay few however many calls there are, and the loop never waits for the disk.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

_T = TypeVar("_T")


class Call(Generic[_T]):
    """One piece of blocking work waiting for the worker thread, and what it gave back."""

    def __init__(self, work: Callable[[], _T], *, writes: bool = True) -> None:
        self.work = work
        self.writes = writes
        self.finished = anyio.Event()
        self.value: _T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.value = self.work()
        except BaseException as exc:  # handed back to the caller that queued it
            self.error = exc

    def outcome(self) -> _T:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]  # set whenever error is not


def run_each(batch: list[Call[Any]]) -> None:
    for call in batch:
        call.run()


class BatchedThread:
    """Runs queued calls in one worker thread at a time, as many per trip as are waiting.

    `run_batch` runs one trip's calls (in order; by default each on its own). A call cancelled before any trip took
    it never runs; one already taken runs, and its caller's cancellation waits for it (never a half-done write that
    the next trip could overlap)."""

    def __init__(self, run_batch: Callable[[list[Call[Any]]], None] = run_each) -> None:
        self._run_batch = run_batch
        self.limiter = anyio.CapacityLimiter(1)
        self._queue: list[Call[Any]] = []
        self._draining = False
        self._drained = anyio.Event()

    @property
    def busy(self) -> bool:
        """A trip is under way (calls queued now wait for the next one)."""
        return self._draining

    async def run(self, work: Callable[[], _T], *, writes: bool = True) -> _T:
        """`work`'s result, run in the worker thread. `writes=False` tells `run_batch` the call only reads."""
        call = Call(work, writes=writes)
        self._queue.append(call)
        try:
            while not call.finished.is_set():
                if self._draining:
                    await self._drained.wait()
                    continue
                await self._drain()
        except BaseException:
            if call in self._queue:
                self._queue.remove(call)
                raise
            with anyio.CancelScope(shield=True):
                await call.finished.wait()
            raise
        return call.outcome()

    async def _drain(self) -> None:
        self._draining = True
        batch, self._queue = self._queue, []
        try:
            # Shielded: the batch holds other callers' calls, which must run (or fail) even if the caller that
            # happens to carry them to the thread is cancelled; marked finished unrun, they would read as done.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._run_batch, batch, limiter=self.limiter)
        finally:
            self._draining = False
            for call in batch:
                call.finished.set()
            drained, self._drained = self._drained, anyio.Event()
            drained.set()
