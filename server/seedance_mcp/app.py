"""create_app(settings) -> MCPServer: the lifespan that owns the runtime, and the families of tools, each
registered from its own module (`tools/`). Importing this module does nothing; only create_app builds anything."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio
from mcp import MCPError
from mcp.server import MCPServer
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.types import METHOD_NOT_FOUND, CallToolResult, InputRequiredResult, SetLevelRequestParams
from mcp.types import Tool as MCPTool

from seedance_mcp import __version__
from seedance_mcp.config import Settings
from seedance_mcp.errors import SeedanceError
from seedance_mcp.principals import load_principals
from seedance_mcp.runtime import LazyRuntime, effective_preset
from seedance_mcp.storyboards.worker import plan_worker
from seedance_mcp.tools import app_ui, generate, models, prompts, resources, storyboard, tasks
from seedance_mcp.tools.legacy_tasks import LegacyTasks
from seedance_mcp.tools.task_extension import SeedanceTasks

if TYPE_CHECKING:
    from mcp.server.auth.provider import TokenVerifier
    from mcp.server.auth.settings import AuthSettings

logger = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    token_verifier: TokenVerifier | None = None,
    auth: AuthSettings | None = None,
    runtimes: list[LazyRuntime] | None = None,
) -> MCPServer[LazyRuntime]:
    """The seedance-mcp server for these settings: nothing is opened until a client connects.

    `token_verifier` and `auth` protect the streamable HTTP transport (see http_server.py); `runtimes` receives the
    runtime once the server starts (for the HTTP server's readiness and metrics routes).
    """
    preset = effective_preset(settings)
    principals = load_principals(settings.tokens_file) if settings.tokens_file else {}
    default_spec_key = models.default_key(settings, preset)

    @asynccontextmanager
    async def lifespan(_: MCPServer[LazyRuntime]) -> AsyncGenerator[LazyRuntime]:
        lazy = LazyRuntime(
            settings,
            delay=settings.startup_delay,
            principals=principals,
            services=[plan_worker(settings, preset, principals)],
        )
        if runtimes is not None:
            runtimes.append(lazy)
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(lazy.run)
            yield lazy
            task_group.cancel_scope.cancel()

    server: MCPServer[LazyRuntime] = SeedanceServer(
        settings.secrets(),
        {"generate_video": generate.argument_hints(preset, default_spec_key)},
        "seedance",
        title="Seedance video generation",
        version=__version__,
        instructions=(
            "Make videos with ByteDance Seedance. generate_video submits a paid job and waits a while, reporting "
            "progress; if it returns before the video is done, call get_task_status(task_id, wait=true) until the "
            "status is `succeeded` and video_path is set. Never resubmit a job that is still rendering. Use "
            "list_models for each model's limits and generate_video(dry_run=true) to see the exact request and "
            "its estimated cost without paying."
        ),
        lifespan=lifespan,
        token_verifier=token_verifier,
        auth=auth,
        request_state_security=_request_state_security(settings),
        middleware=[answer_log_level_requests, LegacyTasks(settings)],
        extensions=[SeedanceTasks(settings)],
    )
    generate.register(server, settings, preset, default_spec_key)
    storyboard.register(server, settings, preset)
    tasks.register(server, settings)
    models.register(server, settings, preset, default_spec_key)
    resources.register(server, settings)
    app_ui.register(server, settings)
    prompts.register(server)
    return server


class SeedanceServer(MCPServer[LazyRuntime]):
    """MCPServer whose tools never fail without text: the SDK answers a failure no code path expected with
    "Error executing tool X" and nothing more; here it says what failed (scrubbed of `secrets`) and what that
    means for the user's money, and the traceback goes to the log. Its `tools/list` is lean (see `list_tools`)."""

    def __init__(
        self, secrets: list[str], argument_hints: dict[str, dict[str, str]], *args: Any, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._secrets = secrets
        self._argument_hints = argument_hints

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[LazyRuntime, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
        from pydantic import ValidationError

        from seedance_mcp.tools.context import unexpected_failure

        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError as exc:
            # Outside the tool's run, so the SDK adds no prefix to this one: it is added here, once.
            if isinstance(exc.__cause__, SeedanceError):  # one of ours (a journal outage): expected, and worded
                raise ToolError(f"Error executing tool {name}: {exc.__cause__}") from exc
            text = unexpected_failure(name, exc, self._secrets)
            raise ToolError(f"Error executing tool {name}: {text}") from exc
        except ToolError as exc:
            # Arguments of the wrong JSON type (a model given as the number 2.0) fail the SDK's argument model
            # before the tool runs: say which argument and the form to use, not pydantic's report.
            if not isinstance(exc.__cause__, ValidationError):
                raise
            from seedance_mcp.requests import explain_invalid_arguments

            text = explain_invalid_arguments(exc.__cause__.errors(), self._argument_hints.get(name, {}))
            raise ToolError(text) from exc.__cause__

    async def list_tools(self) -> list[MCPTool]:
        """The tools with lean schemas (tools/lean_schemas.py): arguments and results are still validated by the
        same pydantic models; only the JSON the client receives (and every conversation pays for) gets smaller."""
        return [_lean(tool) for tool in await super().list_tools()]


def _lean(tool: MCPTool) -> MCPTool:
    from seedance_mcp.tools.lean_schemas import lean_schema, output_schema

    output = output_schema(tool.output_schema) if tool.output_schema is not None else None
    input_schema = lean_schema(tool.input_schema, keep_descriptions=True)
    return tool.model_copy(update={"input_schema": input_schema, "output_schema": output})


_MCP_LOG_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


LOGGING_REMOVED_IN = "2026-07-28"
"""The protocol version that dropped `logging/setLevel` (versions are dates, so they compare as strings)."""


async def answer_log_level_requests(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Answer `logging/setLevel`, which some hosts (VS Code, older Inspectors) send on connect.

    MCPServer registers no handler, so they would get -32601 and some show an error. An Extension cannot bind a
    spec method (MethodBinding refuses it), so this middleware (MCPServer's public `middleware=`) answers where
    the SDK found no handler, in the protocol versions that have the method; the SDK has already checked the
    params by then. The level applies to this server's own stderr log; MCP log notifications are deprecated and
    not sent.
    """
    try:
        return await call_next(ctx)
    except MCPError as exc:
        if ctx.method != "logging/setLevel" or exc.code != METHOD_NOT_FOUND:
            raise
        if ctx.protocol_version >= LOGGING_REMOVED_IN:
            raise
    params = SetLevelRequestParams.model_validate(ctx.params or {})
    logging.getLogger("seedance_mcp").setLevel(_MCP_LOG_LEVELS.get(str(params.level), logging.INFO))
    return {}


def _request_state_security(settings: Settings) -> Any:
    """Shared keys when given (every replica reads what another sealed); the SDK's per-process key otherwise."""
    if not settings.request_state_keys:
        return None
    from mcp.server.request_state import RequestStateSecurity

    return RequestStateSecurity(keys=[key.get_secret_value() for key in settings.request_state_keys])


__all__ = ["SeedanceServer", "create_app"]
