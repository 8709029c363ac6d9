"""`echo`: plays the caller's audio straight back. Operators test a line with it."""

from __future__ import annotations

from voxgate.audio.format import AudioFrame
from voxgate.transports.base import CallAudio

PREBUFFER_MS = 40.0


class EchoAgent:
    """Echo with a 40 ms playout buffer: the reply starts once two frames are in hand, so an
    inbound frame that arrives a little late does not leave a hole in what the caller hears."""

    name = "echo"

    async def handle(self, call: CallAudio) -> None:
        output = call.output
        held: list[AudioFrame] = []
        held_ms = 0.0
        async for event in call:
            if not isinstance(event, AudioFrame):
                continue
            if held_ms >= PREBUFFER_MS:  # primed: straight through
                output.write(event)
                continue
            held.append(event)
            held_ms += event.duration_ms
            if held_ms >= PREBUFFER_MS:
                for frame in held:
                    output.write(frame)
                held.clear()
