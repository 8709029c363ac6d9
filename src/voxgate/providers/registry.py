"""Providers by name: entry-point groups `voxgate.stt`, `voxgate.llm`, `voxgate.tts`, `voxgate.vad`.

A provider module is imported only when `create()` asks for it, so a cloud SDK that is not
installed costs nothing until it is configured. `name` may also be `module:attribute`, to use a
class that no package registers.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

from voxgate.providers.base import LLM, STT, TTS, VAD, BatchSTT
from voxgate.providers.batch_stt import BatchSTTAdapter
from voxgate.providers.realtime.base import RealtimeProvider

Kind = Literal["stt", "llm", "tts", "vad", "realtime"]
KINDS: tuple[Kind, ...] = ("stt", "llm", "tts", "vad", "realtime")
_PROTOCOLS: dict[str, type] = {"stt": STT, "llm": LLM, "tts": TTS, "vad": VAD, "realtime": RealtimeProvider}

# Providers that ship in an optional extra: name → extra (`pip install 'voxgate[extra]'`).
KNOWN_EXTRAS: dict[str, str] = {
    "deepgram": "deepgram",
    "openai": "openai",
    "elevenlabs": "elevenlabs",
    "cartesia": "cartesia",
    "assemblyai": "assemblyai",
    "azure": "azure",
    "google": "google",
    "whisper": "whisper",
    "faster-whisper": "whisper",
    "moonshine": "moonshine",
    "piper": "piper",
    "llama-cpp": "llama",
}


class ProviderNotFound(LookupError):
    pass


def group(kind: str) -> str:
    if kind not in KINDS:
        raise ProviderNotFound(f"unknown provider kind {kind!r}; use one of {', '.join(KINDS)}")
    return f"voxgate.{kind}"


def available(kind: str) -> list[str]:
    """Names registered for `kind` by the installed packages."""
    return sorted({ep.name for ep in entry_points(group=group(kind))})


def _install_hint(name: str) -> str:
    extra = KNOWN_EXTRAS.get(name)
    return f"; it ships in an extra: pip install 'voxgate[{extra}]'" if extra else ""


def _find(kind: str, name: str) -> EntryPoint:
    for ep in entry_points(group=group(kind)):
        if ep.name == name:
            return ep
    names = ", ".join(available(kind)) or "none"
    raise ProviderNotFound(
        f"no {kind} provider named {name!r}; available: {names}{_install_hint(name)} "
        f"(providers register under the '{group(kind)}' entry-point group, or pass 'module:Class')"
    )


def load(kind: str, name: str) -> Any:
    """The factory (usually a class) registered as `name`, imported now."""
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            obj: Any = importlib.import_module(module)
            for part in attr.split("."):
                obj = getattr(obj, part)
        except (ImportError, AttributeError) as exc:
            raise ProviderNotFound(f"cannot load {kind} provider {name!r}: {exc}") from exc
        return obj
    ep = _find(kind, name)
    try:
        return ep.load()
    except ImportError as exc:
        raise ProviderNotFound(
            f"{kind} provider {name!r} ({ep.value}) could not be imported: {exc}{_install_hint(name)}"
        ) from exc


def create(kind: str, name: str, /, **options: Any) -> Any:
    """Build the `kind` provider registered as `name` with `options`.

    A `BatchSTT` registered as STT comes back wrapped in `BatchSTTAdapter`, so it streams.
    """
    factory = load(kind, name)
    provider = factory(**options)
    if kind == "stt" and not isinstance(provider, STT) and isinstance(provider, BatchSTT):
        provider = BatchSTTAdapter(provider)
    if not isinstance(provider, _PROTOCOLS[kind]):
        raise ProviderNotFound(
            f"{kind} provider {name!r} built a {type(provider).__name__}, which is not a "
            f"{_PROTOCOLS[kind].__name__} (see voxgate.providers.base)"
        )
    return provider
