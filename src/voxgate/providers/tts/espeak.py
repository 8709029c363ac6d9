"""eSpeak NG in a subprocess: a light, robotic-sounding fallback TTS with no Python dependencies.

Runs the Debian `espeak-ng` binary (`apt-get install espeak-ng`) once per `synthesize()`, text on
stdin (never on the command line, so no text is read as an option), WAV on stdout. The WAV
header is parsed and the samples are yielded as they arrive, in `frame_ms` frames. Output is
pcm16 at 22050 Hz, eSpeak's native rate; a voice that reports another rate in its header
(an mbrola voice) is resampled to it. Stopping early kills the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct
from collections.abc import AsyncIterator

from voxgate.audio.convert import AudioConverter
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers.base import ProviderError

ESPEAK_RATE = 22050
_READ_BYTES = 8192
_MAX_HEADER_BYTES = 4096


class _WavStreamHeader:
    """Finds the format and the start of the samples in a streamed WAV (whose sizes may be bogus)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.sample_rate: int | None = None

    def feed(self, data: bytes) -> bytes | None:
        """Add bytes; once the `data` chunk starts, return the sample bytes seen so far, else None."""
        self.buffer += data
        buf = self.buffer
        if len(buf) < 12:
            return None
        if buf[:4] != b"RIFF" or buf[8:12] != b"WAVE":
            raise ValueError(f"espeak-ng did not write a WAV header (got {bytes(buf[:12])!r})")
        pos = 12
        while len(buf) >= pos + 8:
            chunk_id = bytes(buf[pos : pos + 4])
            size = struct.unpack_from("<I", buf, pos + 4)[0]
            if chunk_id == b"data":
                if self.sample_rate is None:
                    raise ValueError("WAV data chunk before its fmt chunk")
                return bytes(buf[pos + 8 :])
            if len(buf) < pos + 8 + size:
                break
            if chunk_id == b"fmt ":
                fmt_tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", buf, pos + 8)
                if fmt_tag != 1 or channels != 1 or bits != 16:
                    raise ValueError(f"espeak-ng wrote WAV format {fmt_tag}, {channels} ch, {bits} bit")
                self.sample_rate = rate
            pos += 8 + size + (size & 1)
        if len(buf) > _MAX_HEADER_BYTES:
            raise ValueError("no WAV data chunk in the first 4 KiB of espeak-ng's output")
        return None


class EspeakTTS:
    """eSpeak NG TTS. Options map to espeak-ng's flags:

    - `voice` (`-v`): e.g. "en-us", "en-gb", "en-us+f3" (see `espeak-ng --voices`).
    - `rate` (`-s`): words per minute, 80-450 (espeak's default 175).
    - `pitch` (`-p`), 0-99 (50); `amplitude` (`-a`), 0-200 (100); `word_gap_ms` (`-g`, in 10 ms).
    - `binary`: name or path of the executable; `frame_ms`: length of the frames yielded.
    """

    name = "espeak"

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate: int = 175,
        pitch: int = 50,
        amplitude: int = 100,
        word_gap_ms: int = 0,
        binary: str = "espeak-ng",
        frame_ms: int = 20,
    ) -> None:
        path = shutil.which(binary)
        if path is None:
            raise ProviderError(
                self.name,
                f"the {binary!r} program was not found on PATH; install the Debian package "
                "'espeak-ng' (apt-get install espeak-ng), or pass binary=/path/to/espeak-ng",
                retryable=False,
            )
        if not 80 <= rate <= 450:
            raise ValueError(f"rate is in words per minute, 80..450; got {rate}")
        if not 0 <= pitch <= 99:
            raise ValueError(f"pitch is 0..99; got {pitch}")
        if not 0 <= amplitude <= 200:
            raise ValueError(f"amplitude is 0..200; got {amplitude}")
        if word_gap_ms < 0 or frame_ms <= 0:
            raise ValueError("word_gap_ms must be >= 0 and frame_ms > 0")
        if not voice or voice.startswith("-") or any(c.isspace() for c in voice):
            raise ValueError(f"not an espeak-ng voice name: {voice!r}")
        self.binary = path
        self.voice = voice
        self.args = [
            "--stdin",
            "--stdout",
            "-v",
            voice,
            "-s",
            str(rate),
            "-p",
            str(pitch),
            "-a",
            str(amplitude),
            "-g",
            str(round(word_gap_ms / 10)),
        ]
        self.frame_ms = frame_ms
        self.output_format = AudioFormat(Encoding.PCM16, ESPEAK_RATE)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        text = " ".join(text.split())
        if not text:
            return
        try:
            proc = await asyncio.create_subprocess_exec(
                self.binary,
                *self.args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise ProviderError(
                self.name, f"{self.binary} is gone ({exc}); apt-get install espeak-ng", retryable=False
            ) from exc
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        step = self.output_format.frame_bytes(self.frame_ms)
        header = _WavStreamHeader()
        converter: AudioConverter | None = None
        raw = b""  # bytes from espeak-ng not converted yet (an odd byte waits for its pair)
        out = bytearray()  # converted audio not yielded yet
        try:
            proc.stdin.write(text.encode() + b"\n")
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                await proc.stdin.drain()
            proc.stdin.close()
            while chunk := await proc.stdout.read(_READ_BYTES):
                if converter is None:
                    try:
                        samples = header.feed(chunk)
                    except ValueError as exc:
                        raise ProviderError(self.name, str(exc), retryable=False) from exc
                    if samples is None:
                        continue
                    assert header.sample_rate is not None
                    converter = AudioConverter(
                        AudioFormat(Encoding.PCM16, header.sample_rate), self.output_format
                    )
                    chunk = samples
                raw += chunk
                usable = len(raw) - len(raw) % 2
                out += converter.convert(raw[:usable])
                raw = raw[usable:]
                while len(out) >= step:
                    yield AudioFrame(bytes(out[:step]), self.output_format)
                    del out[:step]
            err = (await proc.stderr.read()).decode(errors="replace").strip()
            code = await proc.wait()
            if code != 0 or converter is None:
                raise ProviderError(
                    self.name,
                    f"espeak-ng -v {self.voice} exited with {code}: {err or 'no audio'}",
                    retryable=False,
                )
            if not converter.passthrough:
                out += converter.convert(b"", last=True)
            for start in range(0, len(out), step):
                yield AudioFrame(bytes(out[start : start + step]), self.output_format)
        finally:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
