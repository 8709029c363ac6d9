"""`CachedTTS`: speak a sentence that was synthesised before straight from memory.

Phone agents say the same sentences over and over (greetings, questions, fixed answers of a flow
agent, apologies). Synthesis is deterministic per voice, so the audio of a sentence can be kept:
the first frame of a cached sentence is ready in microseconds instead of the ~100–300 ms a local
neural voice needs. `prefill()` synthesises known sentences ahead of the first call.

Only complete syntheses are stored (a stream that was cancelled by barge-in or failed is not),
entries are bounded by count and by text length, and the least recently used goes first.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from contextlib import aclosing

from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import TTS, warm_up

log = logging.getLogger("voxgate.providers")


class CachedTTS:
    """A `TTS` that remembers what `tts` said, keyed by the exact text."""

    def __init__(self, tts: TTS, *, max_entries: int = 512, max_chars: int = 300) -> None:
        self.tts = tts
        self.name = tts.name
        self.output_format: AudioFormat = tts.output_format
        self.max_entries = max_entries
        self.max_chars = max_chars
        self._audio: OrderedDict[str, tuple[AudioFrame, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    async def warm_up(self) -> None:
        await warm_up(self.tts)

    def __contains__(self, text: str) -> bool:
        return text in self._audio

    def __len__(self) -> int:
        return len(self._audio)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        frames = self._audio.get(text)
        if frames is not None:
            self.hits += 1
            self._audio.move_to_end(text)
            for frame in frames:
                yield frame
            return
        self.misses += 1
        keep = len(text) <= self.max_chars
        collected: list[AudioFrame] = []
        async with aclosing(self.tts.synthesize(text)) as stream:
            async for frame in stream:
                if keep:
                    collected.append(frame)
                yield frame
        if keep and collected:  # reached only when the synthesis completed
            self._store(text, tuple(collected))

    def _store(self, text: str, frames: tuple[AudioFrame, ...]) -> None:
        self._audio[text] = frames
        self._audio.move_to_end(text)
        while len(self._audio) > self.max_entries:
            self._audio.popitem(last=False)

    async def prefill(self, texts: Iterable[str]) -> int:
        """Synthesise `texts` now (each exactly as it will be asked for); returns how many were
        added. A text that fails is skipped with a warning: it is synthesised live later."""
        added = 0
        for text in dict.fromkeys(t for t in texts if t and len(t) <= self.max_chars):
            if text in self._audio:
                continue
            try:
                async with aclosing(self.synthesize(text)) as stream:
                    async for _ in stream:
                        pass
            except Exception as exc:
                log.warning("could not pre-synthesise %r: %s", text, exc)
                continue
            added += text in self._audio
        return added
