"""Feeding recorded call audio into providers the way a live call does."""

from __future__ import annotations

from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.base import STTStream


def push_call_audio(
    stream: STTStream, input_format: AudioFormat, audio: bytes, fmt: AudioFormat, frame_ms: int = 20
) -> None:
    """Push `audio` (in the call's format `fmt`) as `frame_ms` frames, converted on the fly to the
    STT's `input_format` by one streaming converter, then the converter's tail. The input is not
    ended: the caller decides when the utterance is over (`stream.end_input()`)."""
    converter = AudioConverter(fmt, input_format)
    step = fmt.frame_bytes(frame_ms)
    for start in range(0, len(audio), step):
        stream.push_audio(converter.frame(AudioFrame(audio[start : start + step], fmt)))
    tail = converter.convert(b"", last=True)
    if tail:
        stream.push_audio(AudioFrame(tail, input_format))
