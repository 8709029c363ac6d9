"""Local speech-to-text providers (`BatchSTT`/`STT` of `voxgate.providers.base`).

Importing this package is cheap: each provider imports its engine (faster-whisper, …) only when
an instance is built, and says which extra to install when it is missing.
"""

from voxgate.providers.stt.whisper import WhisperSTT

__all__ = ["WhisperSTT"]
