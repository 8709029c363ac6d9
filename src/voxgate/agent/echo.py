"""`echo`: plays the caller's audio straight back. Operators test a line with it."""

from __future__ import annotations

from voxgate.audio.format import AudioFrame
from voxgate.transports.base import CallAudio


class EchoAgent:
    name = "echo"

    async def handle(self, call: CallAudio) -> None:
        output = call.output
        async for event in call:
            if isinstance(event, AudioFrame):
                output.write(event)
