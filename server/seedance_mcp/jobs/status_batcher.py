"""StatusBatcher: status polls that fall due together share one request, where the provider has a list call.

Ark's task list takes `filter.task_ids` (protocol.md §4.2), so the polls of many jobs that wake within a few
milliseconds of each other become one `GET …/tasks?filter.task_ids=…`. That spends one request of the account's
rate limit instead of dozens, and a fraction of the CPU. Each follower still decides on its own when to poll;
it only waits `window` seconds for company. Tasks the list leaves out, and providers without a list, are polled
one by one. A list call the provider refuses (a gateway without it) switches batching off for good.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio
import anyio.abc

from seedance_mcp.errors import ProviderError, RateLimited, SeedanceError, UnexpectedResponse
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import TaskSnapshot

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class _Waiting:
    task_id: str
    done: anyio.Event = field(default_factory=anyio.Event)
    snapshot: TaskSnapshot | None = None
    error: SeedanceError | None = None


class StatusBatcher:
    def __init__(
        self,
        provider: ProviderClient,
        task_group: anyio.abc.TaskGroup,
        limiter: anyio.CapacityLimiter,
        *,
        window: float = 0.05,
        max_batch: int = 50,
    ) -> None:
        self._provider = provider
        self._task_group = task_group
        self._limiter = limiter
        self._window = window
        self._max_batch = max_batch
        self._groups: dict[str, list[_Waiting]] = {}
        self._disabled = False
        self._unreadable_in_a_row = 0

    async def fetch(self, task_id: str, model_key: str) -> TaskSnapshot:
        if self._disabled or not self._provider.can_batch(model_key):
            return await self._fetch_one(task_id, model_key)
        waiting = _Waiting(task_id)
        group = self._groups.get(model_key)
        if group is None:
            group = self._groups[model_key] = []
            self._task_group.start_soon(self._flush_later, model_key)
        group.append(waiting)
        if len(group) >= self._max_batch:
            self._send(model_key)
        await waiting.done.wait()
        if waiting.error is not None:
            raise waiting.error
        if waiting.snapshot is None:
            # Not in the list (older than its 7-day window, or a gateway quirk): ask for it alone.
            return await self._fetch_one(task_id, model_key)
        return waiting.snapshot

    async def _fetch_one(self, task_id: str, model_key: str) -> TaskSnapshot:
        async with self._limiter:
            return await self._provider.fetch(task_id, model_key)

    async def _flush_later(self, model_key: str) -> None:
        await anyio.sleep(self._window)
        self._send(model_key)

    def _send(self, model_key: str) -> None:
        group = self._groups.pop(model_key, None)
        if group:
            self._task_group.start_soon(self._query, model_key, group)

    async def _query(self, model_key: str, group: Sequence[_Waiting]) -> None:
        try:
            async with self._limiter:
                found = await self._provider.fetch_many([w.task_id for w in group], model_key)
        except RateLimited as exc:
            for waiting in group:
                waiting.error = exc
        except ProviderError as exc:
            if exc.status_code in (400, 404, 405, 501) or exc.status_code is None:
                logger.info("the provider refused its task list (%s); polling tasks one by one", exc)
                self._disabled = True
            else:
                for waiting in group:
                    waiting.error = exc
        except UnexpectedResponse as exc:
            # These tasks are polled one by one this time (their snapshot stays None); a list that is never
            # readable switches batching off.
            self._unreadable_in_a_row += 1
            if self._unreadable_in_a_row >= 3:
                logger.info("the provider's task list is unreadable (%s); polling tasks one by one", exc)
                self._disabled = True
        except SeedanceError as exc:
            for waiting in group:
                waiting.error = exc
        else:
            self._unreadable_in_a_row = 0
            for waiting in group:
                answer = found.get(waiting.task_id)
                if isinstance(answer, UnexpectedResponse):
                    waiting.error = answer
                else:
                    waiting.snapshot = answer
        finally:
            for waiting in group:
                waiting.done.set()
