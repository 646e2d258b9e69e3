"""The sandbox's HTTP surface: each dialect on its own documented paths, with its own answer shapes.

| dialect | create | status |
|---|---|---|
| Ark (ark, byteplus, kkiai 2.0) | POST /api/v3/contents/generations/tasks | GET …/tasks/{id} (also list, DELETE) |
| kkiai 1.x | POST /volc/v1/contents/generations/tasks | GET …/tasks/{id} |
| gpt.ge | POST /task/volces/seedance | GET /task/{id} |
| YEScale | POST /seedance/generations | GET /seedance/generations/{id} |
| OpenAI-compatible | POST /v1/videos | GET /v1/videos/{id} (also list, DELETE, …/content?variant=) |
| aiid | POST /api/v3/contents/generations/tasks with a top-level `prompt` | GET /api/v3/…/tasks/{id} (`task_…` ids) |

Ark and aiid share a path: a create with a top-level `prompt`, `mode` or `function_mode` (fields Ark does not
have) is aiid's; a task answers its status in the dialect it was created in. aiid's status puts the results in
`items[]` unless the prompt says otherwise (`[[shape=toplevel|flat|bare|string]]`: top-level `content`,
`items[].video_url`, no top-level status, `items` as a JSON string). gemini-omni is accepted on aiid creates only.

Faithful enough for the vendors' own clients (tests/contract/test_sdk_contract.py): the Ark SDK's creates carry every
field, unset ones as null, which Ark reads as absent; the `openai` SDK's creates are multipart/form-data with the
first frame as a file part `input_reference`.

Each dialect's handlers are in `dialects/` (one module per dialect), Ark's validation in `checks.py`, the video
route in `media.py`; sandbox-only controls live under /_sandbox (`controls.py`: faults, stats, the log of create
bodies). Prompt markers steer one
task: `[[render=30]]` seconds to render (`[[queue=5]]` of them queued), `[[fail=CODE]]` fail with that code,
`[[sensitive]]` trip input moderation, `[[size_mb=500]]` serve a video that large,
`[[shape=items|metadata|toplevel]]` (OpenAI dialect).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Route

from seedance_mcp.sandbox import controls
from seedance_mcp.sandbox.dialects import ark, gptge, openai, yescale
from seedance_mcp.sandbox.media import media_route
from seedance_mcp.sandbox.state import SandboxState


def create_sandbox_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox as an ASGI app. `app.state.sandbox` is its SandboxState, which every handler reads."""
    # aiid shares Ark's paths: ark.ark_create and ark.ark_get hand its creates and tasks to dialects/aiid.py.
    routes = [
        Route("/api/v3/contents/generations/tasks", ark.ark_create, methods=["POST"]),
        Route("/api/v3/contents/generations/tasks", ark.ark_list, methods=["GET"]),
        Route("/api/v3/contents/generations/tasks/{task_id}", ark.ark_get, methods=["GET"]),
        Route("/api/v3/contents/generations/tasks/{task_id}", ark.ark_delete, methods=["DELETE"]),
        Route("/volc/v1/contents/generations/tasks", ark.ark_create, methods=["POST"]),
        Route("/volc/v1/contents/generations/tasks", ark.ark_list, methods=["GET"]),
        Route("/volc/v1/contents/generations/tasks/{task_id}", ark.ark_get, methods=["GET"]),
        Route("/task/volces/seedance", gptge.gptge_create, methods=["POST"]),
        Route("/task/{task_id}", gptge.gptge_get, methods=["GET"]),
        Route("/seedance/generations", yescale.yescale_create, methods=["POST"]),
        Route("/seedance/generations/{task_id}", yescale.yescale_get, methods=["GET"]),
        Route("/v1/videos", openai.openai_create, methods=["POST"]),
        Route("/v1/videos", openai.openai_list, methods=["GET"]),
        Route("/v1/videos/{task_id}", openai.openai_get, methods=["GET"]),
        Route("/v1/videos/{task_id}", openai.openai_delete, methods=["DELETE"]),
        Route("/v1/videos/{task_id}/content", openai.openai_content, methods=["GET"]),
        Route("/media/{name}", media_route, methods=["GET"]),
        Route("/_sandbox/faults", controls.put_faults, methods=["POST"]),
        Route("/_sandbox/faults", controls.clear_faults, methods=["DELETE"]),
        Route("/_sandbox/stats", controls.stats, methods=["GET"]),
        Route("/_sandbox/requests", controls.requests_log, methods=["GET"]),
        Route("/_sandbox/config", controls.configure, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sandbox = state or SandboxState()
    return app
