"""Prometheus metrics for `serve --http` (`/metrics`), with prometheus_client.

Off unless `enable()` is called (the HTTP server does; stdio never imports prometheus_client): the `observe_*`
functions are then cheap no-ops. Jobs by state and today's spend are read from the journal at scrape time, so
every replica reports the shared truth rather than its own share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seedance_mcp.journal import TaskStore

_metrics: dict[str, Any] | None = None


def enable() -> None:
    """Create the metrics (once per process)."""
    global _metrics
    if _metrics is not None:
        return
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    _metrics = {
        "registry": registry,
        "requests": Counter(
            "seedance_provider_requests",
            "Requests sent to the provider, by kind (create, status, list, cancel, download) and HTTP status "
            "(or `error` when no answer came).",
            ["kind", "status"],
            registry=registry,
        ),
        "poll": Histogram(
            "seedance_poll_seconds",
            "Time one status poll took.",
            registry=registry,
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ),
        "download": Histogram(
            "seedance_download_seconds",
            "Time one video download took.",
            registry=registry,
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
        ),
        "jobs": Gauge("seedance_jobs", "Jobs in the journal, by state.", ["state"], registry=registry),
        "spend": Gauge(
            "seedance_spend_today",
            "Money spent today at list price (jobs in flight at their estimate).",
            ["currency"],
            registry=registry,
        ),
    }


def observe_request(kind: str, status: int | str) -> None:
    if _metrics is not None:
        _metrics["requests"].labels(kind=kind, status=str(status)).inc()


def observe_poll(seconds: float) -> None:
    if _metrics is not None:
        _metrics["poll"].observe(seconds)


def observe_download(seconds: float) -> None:
    if _metrics is not None:
        _metrics["download"].observe(seconds)


async def render(store: TaskStore | None, today: float) -> bytes:
    """The text exposition, with the journal-wide gauges refreshed first."""
    enable()
    assert _metrics is not None
    if store is not None:
        from seedance_mcp.journal.job import STATUSES

        counts = await store.count_by_status()
        for status in STATUSES:
            if status == "not_submitted":  # a dry run's answer: never in the journal
                continue
            _metrics["jobs"].labels(state=status).set(counts.get(status, 0))
        spent: dict[str, float] = {}
        for row in await store.spend(today):
            currency = row.currency or "unknown"
            spent[currency] = spent.get(currency, 0.0) + row.cost
        for currency, amount in spent.items():
            _metrics["spend"].labels(currency=currency).set(amount)
    from prometheus_client import generate_latest

    return generate_latest(_metrics["registry"])
