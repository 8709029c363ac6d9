"""Voice activity detection providers (the `VAD` protocol of `voxgate.providers.base`)."""

from voxgate.providers.vad.silero import SileroVAD

__all__ = ["SileroVAD"]
