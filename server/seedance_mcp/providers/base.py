"""The small interface every wire dialect implements (see `dialects/`); the registry is `providers.dialect_for`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from seedance_mcp.wire import HttpRequest, TaskSnapshot, VideoRequest


class Dialect(Protocol):
    """One provider wire format: pure functions from our request to theirs and from their answers to ours."""

    name: str

    def create_request(self, request: VideoRequest, base_url: str) -> HttpRequest: ...

    def parse_created(self, body: Any) -> str:
        """The provider's task id from a create answer."""
        ...

    def status_request(self, task_id: str, base_url: str) -> HttpRequest: ...

    def parse_task(self, body: Any, task_id: str) -> TaskSnapshot: ...

    def cancel_request(self, task_id: str, base_url: str) -> HttpRequest | None: ...

    def batch_status_request(self, task_ids: Sequence[str], base_url: str) -> HttpRequest | None:
        """One request for many tasks' statuses, where the provider has one (Ark's filtered list)."""
        ...

    def task_page_request(
        self, base_url: str, *, page_num: int, page_size: int, model: str | None, service_tier: str | None
    ) -> HttpRequest | None:
        """One page of the account's tasks, newest first, where the provider lists them (pages count from 1)."""
        ...

    def task_list_items(self, body: Any) -> list[Any]:
        """The task objects of a list answer, each to be read with `parse_task`."""
        ...


class WithoutTaskList:
    """For gateways that document no task list: statuses are read one task at a time, lost creates not searched."""

    def batch_status_request(self, task_ids: Sequence[str], base_url: str) -> HttpRequest | None:
        return None

    def task_page_request(
        self, base_url: str, *, page_num: int, page_size: int, model: str | None, service_tier: str | None
    ) -> HttpRequest | None:
        return None

    def task_list_items(self, body: Any) -> list[Any]:
        raise NotImplementedError("this gateway has no task list")
