"""Reading the provider's task list far enough back to find the task of a lost create answer, or to prove there is
none (protocol.md §4.2, §11.2).

A look counts as complete only when it reached the end of the list or a task older than the moment searched for
(on a list seen to be sorted newest first), with the job's tier (`filter.service_tier=flex` for flex jobs, which
the list hides otherwise) and, for keys that must send it, `filter.model`.
"""

from __future__ import annotations

import itertools
import time

from seedance_mcp.errors import ProviderError, UnexpectedResponse
from seedance_mcp.jobs.lost_creates import TaskSearch
from seedance_mcp.providers._parse import as_int, dig
from seedance_mcp.providers.client import ProviderClient
from seedance_mcp.wire import TaskSnapshot

PAGE_SIZE = 100
MAX_PAGES = 20
"""2,000 tasks: a busy account's few minutes; beyond that the look is reported incomplete rather than guessed."""


async def search_tasks(
    provider: ProviderClient,
    model_key: str,
    *,
    model: str,
    service_tier: str | None,
    since: float,
    margin: float,
) -> TaskSearch:
    """Every task the key's list shows created after `since` (our clock), with `margin` seconds of clock doubt
    when the provider does not say its time. Raises the provider's errors when even the first page fails."""
    base_url = provider.base_url_for(model_key)
    tier = "flex" if service_tier == "flex" else None
    filter_model: str | None = None
    tasks: list[TaskSnapshot] = []
    offset: float | None = None
    unreadable = 0
    seen = 0
    page_num = 1
    while page_num <= MAX_PAGES:
        request = provider.dialect.task_page_request(
            base_url, page_num=page_num, page_size=PAGE_SIZE, model=filter_model, service_tier=tier
        )
        if request is None:
            return TaskSearch((), complete=False, clock_offset=None, looked_at=time.time(), why_incomplete="no list")
        try:
            body, page_offset = await provider.read_task_page(request)
        except ProviderError as exc:
            # Keys with "Custom" permissions must name the model (BytePlus); try once more with the filter.
            if page_num == 1 and filter_model is None and exc.status_code in (400, 403):
                filter_model = model
                continue
            raise
        if offset is None:
            offset = page_offset
        items = provider.dialect.task_list_items(body)
        total = as_int(dig(body, "total"))
        page: list[TaskSnapshot] = []
        for item in items:
            try:
                page.append(provider.dialect.parse_task(item, str(dig(item, "id") or "")))
            except UnexpectedResponse:
                unreadable += 1
        tasks.extend(page)

        seen += len(items)
        if not items or (total is not None and seen >= total):
            return _finished(tasks, offset, unreadable)
        stamps = [task.created_at for task in page]
        newest_first = all(a is not None and b is not None and a >= b for a, b in itertools.pairwise(stamps))
        cutoff = since + (offset or 0.0) - (margin if offset is None else 60.0)
        if newest_first and stamps and stamps[-1] is not None and stamps[-1] < cutoff:
            return _finished(tasks, offset, unreadable)
        page_num += 1
    return TaskSearch(
        tuple(tasks),
        complete=False,
        clock_offset=offset,
        looked_at=time.time(),
        why_incomplete=f"more than {MAX_PAGES * PAGE_SIZE} tasks since then",
    )


def _finished(tasks: list[TaskSnapshot], offset: float | None, unreadable: int) -> TaskSearch:
    return TaskSearch(
        tuple(tasks),
        complete=unreadable == 0,
        clock_offset=offset,
        looked_at=time.time(),
        why_incomplete=f"{unreadable} unreadable entries" if unreadable else "",
    )
