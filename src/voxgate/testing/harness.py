"""Drive an agent frame by frame, without sockets or real time: `SimulatedCall`.

`SimulatedCall` is a `CallAudio` whose clock the test owns: every `step()` feeds one 20 ms
caller frame, lets the agent's tasks run, then takes the one outbound frame the media clock
would send. With scripted providers a minute of conversation runs in well under a second, and
the same script always gives the same frames. For the wire (real AudioSocket, real time) use
`VirtualCaller` instead.

    call = SimulatedCall()
    task = asyncio.create_task(agent.handle(call))
    await call.silence(500)
    await call.say(tone(800))          # caller speech: any pcm16 at call.rate
    await call.until(lambda: call.agent_audio_ms > 0, within_ms=3000)
"""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable

import numpy as np

from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.audio.pacer import FRAME_MS, OutboundPacer
from voxgate.transports.base import Dtmf, InboundStream

_SETTLE_ROUNDS = 8  # loop turns per step: enough for queue → task → task hand-offs


def tone(ms: float, rate: int = 8000, hz: float = 300.0, amplitude: int = 8000) -> bytes:
    """A pcm16 tone: loud enough to count as speech for an energy VAD."""
    n = int(rate * ms / 1000)
    return (amplitude * np.sin(2 * np.pi * hz * np.arange(n) / rate)).astype("<i2").tobytes()


class SimulatedCall:
    """An in-memory call whose time advances only when the test steps it."""

    def __init__(self, rate: int = 8000, call_id: str | None = None) -> None:
        self.call_id = call_id or str(uuid.uuid4())
        self.rate = rate
        self.format = AudioFormat(Encoding.PCM16, rate)
        self._inbound = InboundStream()
        self.output = OutboundPacer(self.format, lambda payload: payload)
        self._silence = self.format.silence(self.format.frame_bytes(FRAME_MS))
        self.now_ms = 0.0
        self.sent: list[tuple[float, bool]] = []  # (time, was agent audio) per outbound frame
        self.agent_audio = bytearray()
        self.hung_up: str | None = None
        self.transfers: list[str] = []

    # --- CallAudio ---------------------------------------------------------------------------

    @property
    def inbound_format(self) -> AudioFormat:
        return self.format

    def __aiter__(self) -> InboundStream:
        return self._inbound

    async def hangup(self, reason: str = "agent") -> None:
        if self.hung_up is None:
            self.hung_up = reason
        self._inbound.close()

    # --- driving -----------------------------------------------------------------------------

    @property
    def agent_audio_ms(self) -> float:
        return self.output.audio_frames_sent * FRAME_MS

    def agent_talking(self) -> bool:
        """Whether the last outbound frame was agent audio."""
        return bool(self.sent) and self.sent[-1][1]

    async def settle(self) -> None:
        for _ in range(_SETTLE_ROUNDS):
            await asyncio.sleep(0)

    async def step(self, frame: bytes | None = None) -> None:
        """One 20 ms period: a caller frame in (silence by default), the agent's frame out."""
        if self.hung_up is None:
            self._inbound.put(AudioFrame(frame if frame is not None else self._silence, self.format))
        await self.settle()
        before = self.output.audio_frames_sent
        message = self.output.next_message()
        audio = self.output.audio_frames_sent > before
        self.sent.append((self.now_ms, audio))
        if audio:
            self.agent_audio += message
        self.now_ms += FRAME_MS

    async def say(self, pcm16: bytes) -> None:
        """The caller speaks `pcm16` (at `rate`), one frame per step (the tail padded)."""
        n = self.format.frame_bytes(FRAME_MS)
        for start in range(0, len(pcm16), n):
            chunk = pcm16[start : start + n]
            await self.step(chunk + bytes(n - len(chunk)))

    async def silence(self, ms: float) -> None:
        for _ in range(math.ceil(ms / FRAME_MS)):
            await self.step()

    async def press(self, digits: str) -> None:
        for digit in digits:
            self._inbound.put(Dtmf(digit))
            await self.step()

    async def until(self, condition: Callable[[], bool], within_ms: float) -> float:
        """Step with caller silence until `condition()`; returns the ms it took. Raises
        `TimeoutError` naming the budget if it never holds."""
        start = self.now_ms
        while not condition():
            if self.now_ms - start >= within_ms:
                raise TimeoutError(f"condition not met within {within_ms:.0f} ms of call time")
            await self.step()
        return self.now_ms - start

    def end(self) -> None:
        """The caller hangs up."""
        self._inbound.close()
