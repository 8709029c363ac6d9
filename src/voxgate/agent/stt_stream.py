"""Live transcription: a streaming STT hears each caller turn while it is being spoken.

An `STT` whose class sets `streams_during_speech = True` (a cloud streaming recognizer such as
Deepgram) gets one `stream()` per caller turn, opened at `SpeechStarted`. The turn's audio
(pcm16 at the turn detector's rate: the prefix padding, then each new window) is converted and
pushed as it arrives, `end_input()` comes at `SpeechEnded`, and the joined final events are the
transcript, usually ready almost at once. The stream gets exactly the audio of
`SpeechEnded.audio`, the bytes the whole-utterance path would transcribe.

The events are read from the moment the stream opens: a stream may connect only when read
(`FallbackSTT` does). The transcript's timeout starts at the endpoint, as on the whole-utterance
path. A turn whose stream cannot be opened or fed, or that ends or fails before the caller
stops, gets `None` at its end: the runner then transcribes the buffered utterance as for a
batch STT. A turn that is dropped has its stream closed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from voxgate.agent.record import CallRecord
from voxgate.agent.turns import TurnDetector
from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import STT, ProviderError, STTStream, provider_name
from voxgate.providers.resilience import aclose_quietly

_CLOSE_WAIT_S = 3.0  # each stream's own close is bounded (2 s): this is a backstop


def streams_during_speech(stt: object) -> bool:
    """Whether `stt` wants the caller's audio while they speak (not only the whole utterance)."""
    return getattr(stt, "streams_during_speech", False) is True


class _TurnStream:
    """One caller turn's stream, and the task reading its events from the moment it opens."""

    def __init__(self, stt: STT, fmt: AudioFormat) -> None:
        self.converter = AudioConverter(fmt, stt.input_format)
        self.stream: STTStream = stt.stream()
        self.pushed = 0  # bytes of the turn's audio (detector format) pushed so far
        self.closed = False
        self._deadline: asyncio.Timeout | None = None
        self._deadline_at: float | None = None
        self.reader: asyncio.Task[str] = asyncio.create_task(self._read(), name="live-stt")
        self.reader.add_done_callback(_consume)

    def push(self, audio: bytes) -> None:
        """Push what `audio` (the turn's audio so far) holds beyond what was pushed already."""
        if len(audio) > self.pushed:
            self.push_new(audio[self.pushed :])

    def push_new(self, new: bytes) -> None:
        """Push the turn's next bytes (those after `pushed`)."""
        if not new:
            return
        self.pushed += len(new)
        data = self.converter.convert(new)
        if data:
            self.stream.push_audio(AudioFrame(data, self.converter.dst))

    def finish(self, audio: bytes, timeout_s: float) -> None:
        self.push(audio)
        if not self.converter.passthrough and (tail := self.converter.convert(b"", last=True)):
            self.stream.push_audio(AudioFrame(tail, self.converter.dst))
        self.stream.end_input()
        self._expire_at(asyncio.get_running_loop().time() + timeout_s)

    def stop(self) -> None:
        """Abandon the turn: the reader stops at once (even if it has not started yet) and closes
        the stream."""
        self._expire_at(asyncio.get_running_loop().time())

    def _expire_at(self, when: float) -> None:
        if self.reader.done() or (self._deadline_at is not None and self._deadline_at <= when):
            return
        self._deadline_at = when
        if self._deadline is not None and not self._deadline.expired():
            self._deadline.reschedule(when)

    async def _read(self) -> str:
        text = ""
        try:
            async with asyncio.timeout_at(self._deadline_at) as self._deadline:
                async for event in self.stream:
                    if event.kind == "final" and event.text.strip():
                        text = f"{text} {event.text.strip()}".strip()
        finally:
            self._deadline = None
            await aclose_quietly(self.stream, "live stt stream")
            self.closed = True
        return text

    def early_end(self) -> BaseException | str:
        """Why the reader is already done before the endpoint."""
        if self.reader.cancelled():
            return "the stream was cancelled"
        return self.reader.exception() or "the stream ended before the caller stopped talking"


class LiveTranscriber:
    """Feeds a streaming STT each caller turn while it is spoken; one per call, driven by the
    runner's inbound loop (`start` at SpeechStarted, `feed` after each frame, `end` at
    SpeechEnded, `discard` for a turn that is dropped) and closed with `aclose()`.

    Nothing here blocks: `push_audio()` is non-blocking by contract.
    """

    def __init__(
        self,
        stt: STT,
        fmt: AudioFormat,
        *,
        timeout_s: float,
        log: logging.Logger | logging.LoggerAdapter[Any],
        record: CallRecord,
    ) -> None:
        self.stt = stt
        self.format = fmt
        self.timeout_s = timeout_s
        self._log = log
        self._record = record
        self._turn: _TurnStream | None = None
        self._fed_at = -1.0  # the detector's clock at the last feed
        self._open: set[_TurnStream] = set()  # streams not known to be closed

    def start(self) -> None:
        """The caller started a turn: open its stream."""
        self.discard()
        self._open = {t for t in self._open if not t.closed}
        try:
            turn = _TurnStream(self.stt, self.format)
        except Exception as exc:
            self._fail(exc)
            return
        self._turn = turn
        self._open.add(turn)

    def feed(self, turns: TurnDetector) -> None:
        """After each inbound frame: push the audio the detector added to the turn."""
        turn = self._turn
        if turn is None or not turns.speaking or turns.now_ms == self._fed_at:
            return
        self._fed_at = turns.now_ms
        if turn.reader.done():
            self._fail(turn.early_end())
            return
        try:
            turn.push_new(turns.utterance_since(turn.pushed))
        except Exception as exc:
            self._fail(exc)

    def end(self, audio: bytes) -> asyncio.Task[str] | None:
        """The turn ended (`audio` is its `SpeechEnded.audio`): the task that gives its
        transcript, or None if the stream failed and the utterance must be transcribed whole."""
        turn = self._turn
        if turn is None:
            return None
        if turn.reader.done():
            self._fail(turn.early_end())
            return None
        try:
            turn.finish(audio, self.timeout_s)
        except Exception as exc:
            self._fail(exc)
            return None
        self._turn = None
        return turn.reader

    def discard(self) -> None:
        """Drop the open turn, if any, closing its stream."""
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.stop()

    async def aclose(self) -> None:
        """End of the call: stop and close every stream still open, the transcripts nobody
        waited for included."""
        self.discard()
        open_, self._open = self._open, set()
        for turn in open_:
            turn.stop()
        readers = {t.reader for t in open_ if not t.reader.done()}
        if readers:
            await asyncio.wait(readers, timeout=_CLOSE_WAIT_S)
        for turn in open_:
            if not turn.closed:  # its reader never ran (cancelled before it started)
                await aclose_quietly(turn.stream, "live stt stream")
                turn.closed = True

    def _fail(self, why: BaseException | str) -> None:
        """Give up streaming this turn (logged once): its end falls back to the whole utterance."""
        self.discard()
        expected = isinstance(why, str | ProviderError | TimeoutError)
        detail = why if isinstance(why, str) else (str(why) or type(why).__name__)
        self._log.warning(
            "streaming STT %s failed (%s); this turn is transcribed whole at its end",
            provider_name(self.stt),
            detail,
            exc_info=why if not expected else None,
        )
        self._record.event("stt_stream_failed", error=detail)


def _consume(task: asyncio.Task[str]) -> None:
    """Retrieve a reader's outcome so an unused failure is not reported as lost."""
    if not task.cancelled():
        task.exception()
