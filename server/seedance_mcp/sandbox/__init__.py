"""The embedded sandbox provider: a real HTTP server on loopback that speaks the four Seedance dialects.

No key, no cost: tasks go queued → running → succeeded over a few seconds and serve a real, playable MP4. Used by
`SEEDANCE_PROVIDER=sandbox`, by `seedance-mcp sandbox --port N`, by the demo and by the tests. Production code
never imports it except to start it for that preset.
"""

from seedance_mcp.sandbox.app import create_sandbox_app
from seedance_mcp.sandbox.server import SandboxServer, running_sandbox
from seedance_mcp.sandbox.state import Fault, SandboxState

__all__ = ["Fault", "SandboxServer", "SandboxState", "create_sandbox_app", "running_sandbox"]
