"""Providers (seam 4): STT, LLM, TTS and VAD behind small Protocols, plus the shared machinery
around them: timeouts, retries and watchdog (`resilience`), fallback lists (`fallback`) and
registration by name (`registry`)."""

from voxgate.providers.base import (
    LLM,
    STT,
    TTS,
    VAD,
    BatchSTT,
    ChatMessage,
    LLMDone,
    LLMEvent,
    ProviderError,
    ProviderTimeout,
    SpeechEvent,
    STTStream,
    TextDelta,
    ToolCallEvent,
    ToolSpec,
    Usage,
)
from voxgate.providers.batch_stt import BatchSTTAdapter, BatchSTTStream
from voxgate.providers.fallback import FallbackError, FallbackLLM, FallbackSTT, FallbackTTS
from voxgate.providers.registry import ProviderNotFound, available, create
from voxgate.providers.resilience import ConnectOptions, resilient_stream

__all__ = [
    "LLM",
    "STT",
    "TTS",
    "VAD",
    "BatchSTT",
    "BatchSTTAdapter",
    "BatchSTTStream",
    "ChatMessage",
    "ConnectOptions",
    "FallbackError",
    "FallbackLLM",
    "FallbackSTT",
    "FallbackTTS",
    "LLMDone",
    "LLMEvent",
    "ProviderError",
    "ProviderNotFound",
    "ProviderTimeout",
    "STTStream",
    "SpeechEvent",
    "TextDelta",
    "ToolCallEvent",
    "ToolSpec",
    "Usage",
    "available",
    "create",
    "resilient_stream",
]
