"""Tool results: a job as the model reads it, with the one next step that is true for its state."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from seedance_mcp.models import CancelResult, ProviderRequestPreview, Spend, TaskLine, TaskList, VideoTask

if TYPE_CHECKING:
    from mcp.types import CallToolResult

    from seedance_mcp.journal.job import Job
    from seedance_mcp.runtime import Runtime
    from seedance_mcp.wire import HttpRequest, VideoRequest


ACTIVE = ("submitting", "queued", "running", "unknown")
"""States whose job is still to be followed with get_task_status."""


def _iso(epoch: float | None) -> str | None:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds") if epoch else None


def next_step(job: Job) -> str:
    handle = job.handle
    match job.status:
        case "succeeded" if job.video_path:
            simulated = " (Sandbox: a sample clip, not billed.)" if job.simulated else ""
            return f"Saved to video_path: give the user this path.{simulated}"
        case "succeeded" if job.download_error and job.download_permanent:
            return (
                f"The video was made (and billed) but cannot be saved: {job.download_error}. The server will not "
                "try again: give the user video_url to fetch it themselves before it expires."
            )
        case "succeeded" if job.download_error and job.download_cap_bytes is not None:
            return (
                f"The video is ready but larger than the download cap ({job.download_error}). Ask the user to raise "
                "SEEDANCE_MAX_DOWNLOAD_MB in the server's environment and restart it, then call get_task_status("
                f'task_id="{handle}", wait=true) to save it; or give them video_url.'
            )
        case "succeeded" if job.download_error:
            when = f" (next try at {_iso(job.download_retry_at)})" if job.download_retry_at else ""
            return (
                f"The video is ready (and billed) but saving it failed ({job.download_error}); the server tries "
                f'again by itself{when}. Call get_task_status(task_id="{handle}", wait=true) to try now and wait '
                "for it. Do not call generate_video again for this video."
            )
        case "succeeded":
            return f'The video is ready and downloading: call get_task_status(task_id="{handle}", wait=true).'
        case "queued" | "running" | "submitting":
            state = "Rendering" if job.status == "running" else "Waiting in the provider's queue"
            typical = f"a render takes about {job.expected_render_seconds:.0f} s"
            return (
                f'{state} ({typical}). Call get_task_status(task_id="{handle}", wait=true) to keep waiting. Do not '
                "call generate_video again for this video: that would pay for a second one."
            )
        case "failed":
            return (
                f"The task failed ({job.error_code or 'no code'}): {_shown(job.error_message) or 'no message'}. "
                "Moderation failures are not billed: change the prompt or image and try again."
            )
        case "unknown":
            return (
                "The create request's answer was lost, so a paid task may exist: do not submit again. On Ark the "
                f'server is finding it in the provider\'s task list; call get_task_status(task_id="{handle}") in a '
                "minute. On other gateways check the provider console; only if no task exists, use "
                "generate_video(force_new=true)."
            )
        case "cancelled":
            return "The task was cancelled; nothing was rendered."
        case "expired":
            return "The task expired before it finished; submit it again if the video is still wanted."
        case "not_submitted":
            return "Nothing was sent."


def progress_of(job: Job, now: float) -> float | None:
    """The percent a person is shown: reported by the provider where it says, else the same estimate the progress
    notifications carry (from elapsed time against the expected render time)."""
    if job.status == "succeeded":
        return 100.0
    if job.status not in ("queued", "running", "submitting"):
        return job.progress
    from seedance_mcp.jobs.polling import ProgressMeter

    elapsed = now - (job.submitted_at or job.created_at)
    return ProgressMeter(expected_seconds=job.expected_render_seconds).estimate(job.status, elapsed, job.progress)


def job_result(job: Job, *, reused: bool = False, clock: Callable[[], float] = time.time) -> VideoTask:
    end = job.finished_at or clock()
    return VideoTask(
        task_id=job.handle,
        job_id=job.job_id,
        provider=job.provider,
        model=job.model,
        status=job.status,
        prompt=job.prompt if len(job.prompt) <= 200 else job.prompt[:199] + "…",
        progress_percent=progress_of(job, clock()) if job.status in ACTIVE else None,
        video_path=job.video_path,
        video_url=job.video_url,
        video_url_expires_at=_iso(job.video_url_expires_at),
        last_frame_url=job.last_frame_url,
        last_frame_path=job.last_frame_path,
        resolution=job.resolution,
        ratio=job.ratio,
        duration=job.duration,
        frames=job.frames,
        seed=job.seed,
        # Once billed, the estimate has nothing more to say.
        estimated_tokens=job.estimated_tokens if job.usage_tokens is None else None,
        usage_tokens=job.usage_tokens,
        estimated_cost=money(job.estimated_tokens, job.cost_rate) if job.usage_tokens is None else None,
        cost=money(job.usage_tokens, job.cost_rate),
        currency=job.currency if job.cost_rate is not None else None,
        simulated=job.simulated,
        error_code=job.error_code,
        error_message=_shown(job.error_message or job.download_error or job.last_poll_error),
        request_id=job.request_id,
        created_at=_iso(job.created_at),
        elapsed_seconds=round(end - (job.submitted_at or job.created_at), 1),
        reused_existing=reused,
        continue_with=continue_with(job),
        next_step=next_step(job),
    )


def _shown(message: str | None) -> str | None:
    """A provider's message for a result: a link to an uploaded file it quotes is shown as the file (the link names
    the bucket, the object key and the access key id)."""
    if message is None or "://" not in message:
        return message
    from seedance_mcp.media.uploads import without_links

    return without_links(message)


def continue_with(job: Job) -> str | None:
    """How to carry a finished clip on, in one line (None until it is finished)."""
    if job.status != "succeeded" or job.task_id is None:
        return None
    return f'generate_video(continue_from="{job.handle}")'


_DATA_URL = re.compile(r"^data:([\w/+.-]+);base64,(.*)$", re.DOTALL)


def _elide_data_urls(value: Any) -> Any:
    """A request body for display: base64 payloads shortened to their size, links to uploaded files named by their
    content only (a presigned link names the bucket, the object key and the access key id)."""
    if isinstance(value, dict):
        return {k: _elide_data_urls(v) for k, v in value.items()}  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, list):
        return [_elide_data_urls(v) for v in value]  # pyright: ignore[reportUnknownVariableType]
    if isinstance(value, str) and (match := _DATA_URL.match(value)):
        return f"data:{match.group(1)};base64,<{len(match.group(2)) * 3 // 4} bytes>"
    if isinstance(value, str) and value.startswith(("https://", "http://")):
        from seedance_mcp.media.uploads import shown_link

        return shown_link(value) or value
    return value


def money(tokens: int | None, rate_per_million: float | None) -> float | None:
    """Tokens at a price per million, rounded to a hundredth of a cent; None when either is unknown."""
    if tokens is None or rate_per_million is None:
        return None
    return round(tokens * rate_per_million / 1_000_000, 4)


def cost_text(tokens: int, price: tuple[float, str] | None) -> str:
    """`about 108,900 output tokens (≈ 5.01 CNY at list price)`."""
    text = f"about {tokens:,} output tokens"
    if price is not None:
        text += f" (≈ {money(tokens, price[0]):.2f} {price[1]} at list price)"
    return text


def dry_run_result(
    runtime: Runtime, request: VideoRequest, http_request: HttpRequest, price: tuple[float, str] | None = None
) -> VideoTask:
    headers = {"Content-Type": "application/json", "Authorization": "Bearer ***" if runtime.provider.has_key else ""}
    preview = ProviderRequestPreview(
        method=http_request.method,
        url=http_request.url,
        headers={k: v for k, v in headers.items() if v},
        body=_elide_data_urls(http_request.json_body),
    )
    return VideoTask(
        task_id="dry-run",
        job_id="dry-run",
        provider=runtime.preset.name,
        model=request.model_id,
        status="not_submitted",
        prompt=request.prompt,
        resolution=request.effective_resolution,
        ratio=request.ratio or request.effective_ratio,
        duration=request.effective_seconds,
        frames=request.frames,
        seed=request.seed,
        estimated_tokens=request.estimated_tokens,
        estimated_cost=money(request.estimated_tokens, price[0] if price else None),
        currency=price[1] if price else None,
        dry_run_request=preview,
        next_step=(
            f"Nothing was sent. Call generate_video with the same arguments and without dry_run to submit; it will "
            f"bill {cost_text(request.estimated_tokens, price)}"
            + (", plus the reference videos' length at the same rate." if request.reference_videos else ".")
        ),
    )


def declined_result(provider: str, request: VideoRequest, price: tuple[float, str] | None) -> VideoTask:
    """The person said no when asked to approve the cost: nothing was sent."""
    return VideoTask(
        task_id="declined",
        job_id="declined",
        provider=provider,
        model=request.model_id,
        status="not_submitted",
        prompt=request.prompt,
        resolution=request.effective_resolution,
        duration=request.effective_seconds,
        estimated_tokens=request.estimated_tokens,
        estimated_cost=money(request.estimated_tokens, price[0] if price else None),
        currency=price[1] if price else None,
        next_step="The user declined this video's cost, so nothing was sent or charged. Ask them what to change.",
    )


def task_content(task: VideoTask) -> dict[str, Any]:
    """A task as structured content: its data, without the fields that have nothing to say (null, or a flag at its
    default `false`; the schema makes them optional)."""
    return task.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True)


def _amount(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def task_text(task: VideoTask) -> str:
    """A task as the model reads it: what it is, every file and link, the next step. Short lines, not the
    structured content again as JSON."""
    shape = [
        f"{task.duration:g} s" if task.duration and task.duration > 0 else "",
        task.resolution or "",
        task.ratio or "",
    ]
    head = f"{task.task_id}: {task.status}, {task.model}"
    if any(shape):
        head += ", " + " ".join(part for part in shape if part)
    if task.cost is not None:
        head += f", cost {_amount(task.cost)} {task.currency or ''}".rstrip()
    elif task.estimated_cost is not None:
        head += f", ≈ {_amount(task.estimated_cost)} {task.currency or ''} estimated".rstrip()
    elif task.usage_tokens is not None or task.estimated_tokens is not None:
        head += f", {task.usage_tokens or task.estimated_tokens:,} tokens"
    if task.status in ACTIVE and task.progress_percent is not None:
        head += f", {task.progress_percent:.0f} %"
    lines = [head + "."]
    if (task.error_code or task.error_message) and task.status != "failed":  # a failure's next step quotes it
        lines.append(f"Error: {' '.join(filter(None, [task.error_code, task.error_message]))}")
    if task.request_id and (task.error_code or task.status == "failed"):
        lines.append(f"Provider request id: {task.request_id}")
    if task.video_path:
        lines.append(f"Saved: {task.video_path}")
    if task.video_url:
        until = f" (until {task.video_url_expires_at})" if task.video_url_expires_at else ""
        lines.append(f"Link{until}: {task.video_url}")
    for kind, value in (("Last frame", task.last_frame_path), ("Last frame link", task.last_frame_url)):
        if value:
            lines.append(f"{kind}: {value}")
    if task.dry_run_request is not None:
        request = task.dry_run_request
        lines.append(f"Request: {request.method} {request.url} {json.dumps(request.body, ensure_ascii=False)}")
    lines.append(task.next_step)
    return "\n".join(lines)


PROMPT_EXCERPT = 40
"""How much of a prompt list_tasks shows: enough to tell videos apart."""


def task_line(job: Job) -> TaskLine:
    """A job as one entry of list_tasks."""
    prompt = job.prompt if len(job.prompt) <= PROMPT_EXCERPT else job.prompt[: PROMPT_EXCERPT - 1] + "…"
    return TaskLine(
        task_id=job.handle,
        status=job.status,
        model=job.model_key,
        prompt=prompt,
        created_at=datetime.fromtimestamp(job.created_at, UTC).strftime("%Y-%m-%dT%H:%MZ"),
        saved=job.video_path is not None,
        error_code=job.error_code,
    )


def task_list_result(tasks: list[TaskLine], more: bool, spend: Spend, jobs: list[Job] | None = None) -> CallToolResult:
    """list_tasks' answer: a line per job (structured) and a short summary (text); with `jobs` (detail), each job
    in full as get_task_status shows it, in the structured content and as text."""
    from mcp.types import CallToolResult, TextContent

    listed = TaskList(tasks=tasks, more=more, spend=spend)
    structured = listed.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    text = task_list_text(tasks, more, spend)
    if jobs is not None:
        full = [job_result(job) for job in jobs]
        structured["tasks"] = [task_content(task) for task in full]
        text = "\n\n".join([*(task_text(task) for task in full), text])
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)


def task_list_text(tasks: list[TaskLine], more: bool, spend: Spend) -> str:
    """list_tasks for the model to read: how many in which state, what is still running, the money."""
    from collections import Counter

    if not tasks:
        return "No tasks." + (" Older ones match: raise limit." if more else "")
    counts = Counter(task.status for task in tasks)
    lines = [
        f"{len(tasks)} task{'s' if len(tasks) != 1 else ''}, newest first"
        + (" (older ones match too: raise limit)" if more else "")
        + ": "
        + ", ".join(f"{n} {status}" for status, n in counts.most_common())
        + "."
    ]
    currency = f" {spend.currency}" if spend.currency else ""
    money_line = f"Spent today {_amount(spend.today)}{currency}, this week {_amount(spend.this_week)}{currency}"
    if spend.daily_budget is not None:
        money_line += f"; your daily budget {_amount(spend.daily_budget)}{currency}"
    if spend.team_daily_budget is not None and spend.team_today is not None:
        money_line += f"; everyone today {_amount(spend.team_today)} of {_amount(spend.team_daily_budget)}{currency}"
    lines.append(money_line + ".")
    following = [task.task_id for task in tasks if task.status in ACTIVE]
    if following:
        lines.append(f"Not finished: {', '.join(following)}: get_task_status(task_id, wait=true).")
    lines.append("get_task_status(task_id) gives a task's saved path and links.")
    return "\n".join(lines)


def cancel_result(answer: CancelResult) -> CallToolResult:
    """cancel_task's answer: the data, and its message as the text."""
    from mcp.types import CallToolResult, TextContent

    text = f"{answer.task_id}: {'cancelled' if answer.cancelled else 'not cancelled'} (`{answer.status}`). "
    return CallToolResult(
        content=[TextContent(type="text", text=text + answer.message)],
        structured_content=answer.model_dump(mode="json"),
    )
