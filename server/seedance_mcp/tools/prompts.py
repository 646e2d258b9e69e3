"""Prompts a person picks from the client's menu: how to describe a shot so Seedance renders what is meant."""

from __future__ import annotations

from typing import Annotated

from mcp.server import MCPServer
from pydantic import Field

from seedance_mcp.runtime import LazyRuntime

SHOT_GUIDE = """Write a Seedance video prompt for this idea, then call generate_video with it (dry_run=true first
if the user should see the cost).

Idea: {idea}

How Seedance reads a prompt (one paragraph, plain sentences, 40-120 words):
1. Subject: who or what, with the details that must stay the same (clothing, colours, materials).
2. Action: what happens, in order, with verbs of motion; one main action per 5 seconds.
3. Scene: where and when — place, weather, time of day, light.
4. Camera: shot size and movement ("close-up", "slow dolly in", "handheld tracking shot", "static camera").
   Several shots: describe them in order ("Shot 1: … Shot 2: …"); 2.0 and 2.5 cut between them.
5. Style: look and mood ("photorealistic", "35 mm film grain", "watercolour animation").
6. Sound (1.5 pro, 2.0, 2.5 make audio): say what is heard — dialogue in quotes, music, ambience.
Keep it to what is seen and heard; no `--flags` (pass resolution, ratio and duration as arguments). With a first
frame, describe the motion, not the picture. With reference images, name them: "the woman in image 1".
"""


def register(server: MCPServer[LazyRuntime]) -> None:
    @server.prompt(title="Describe a Seedance shot")
    def seedance_shot(
        idea: Annotated[str, Field(description="What the video should show, in a few words.")],
    ) -> str:
        """Turn an idea into a prompt Seedance renders well: subject, action, scene, camera, style, sound."""
        return SHOT_GUIDE.format(idea=idea.strip() or "(ask the user)")
