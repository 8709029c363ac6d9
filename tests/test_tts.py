"""TTS providers on real engines: Piper (joe-medium voice from its wheel) and Debian's espeak-ng.

Speech is judged by its duration, its energy (not silence: most 20 ms windows are loud, the
rest are the gaps between words), and, when a local STT is installed, by transcribing it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import struct
import time
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voxgate.audio.convert import convert_all
from voxgate.audio.format import AudioFormat, AudioFrame, Encoding
from voxgate.providers import TTS, ProviderError, ProviderNotFound, create
from voxgate.providers.tts.espeak import EspeakTTS, _WavStreamHeader

SENTENCE = "I would like to book an appointment for next Tuesday morning, please."
STORY = (
    "Thank you for calling the dental clinic. "
    "Our opening hours are nine to five, Monday to Friday. "
    "If you would like to book an appointment, please say the day that suits you. "
    "You can also leave a message and we will call you back tomorrow."
)

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (apt-get install espeak-ng, or `make test` as root)",
)


async def collect(frames: AsyncIterator[AudioFrame]) -> tuple[bytes, list[AudioFrame]]:
    got = [frame async for frame in frames]
    return b"".join(f.data for f in got), got


def assert_speech(pcm: bytes, rate: int, min_s: float, max_s: float) -> None:
    """Plausible length, loud enough, and mostly active 20 ms windows, like speech."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    seconds = len(x) / rate
    assert min_s <= seconds <= max_s, f"{seconds:.2f} s of audio"
    hop = rate // 50
    windows = x[: len(x) // hop * hop].reshape(-1, hop)
    rms = np.sqrt(np.mean(windows**2, axis=1))
    assert np.sqrt(np.mean(x**2)) > 1000, "audio is nearly silent"
    assert np.mean(rms > 300) > 0.5, "most of the audio is silence"
    assert np.abs(x).max() < 32767, "audio clips"
    # Speech changes from window to window; a constant tone or hum would not.
    assert np.std(rms) / np.mean(rms) > 0.3


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


# --- Piper ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def piper_tts():
    pytest.importorskip("piper", reason="the piper extra is not installed: pip install 'voxgate[piper]'")
    from voxgate.providers.tts.piper import PiperTTS

    tts = PiperTTS()
    tts.voice()  # load once for the module (~2 s), as a server does at start
    return tts


async def test_piper_speaks_a_sentence_for_a_plausible_time(piper_tts) -> None:
    assert piper_tts.output_format == AudioFormat(Encoding.PCM16, 22050)
    pcm, frames = await collect(piper_tts.synthesize(SENTENCE))
    assert all(f.format == piper_tts.output_format for f in frames)
    assert all(len(f.data) == piper_tts.output_format.frame_bytes(20) for f in frames[:-1])
    # 12 words at a normal pace: about 3-4 s.
    assert_speech(pcm, 22050, min_s=2.0, max_s=6.0)


async def test_piper_streams_the_first_sentence_before_the_rest_is_synthesised(piper_tts) -> None:
    await piper_tts.warm()
    start = time.perf_counter()
    first = None
    pcm = b""
    async for frame in piper_tts.synthesize(STORY):
        if first is None:
            first = time.perf_counter() - start
        pcm += frame.data
    total = time.perf_counter() - start
    assert first is not None
    # Four sentences are synthesised one after the other: the first audio comes after about a
    # quarter of the work, not after all of it.
    assert first < total * 0.75, f"first frame after {first * 1000:.0f} ms of {total * 1000:.0f} ms"
    assert_speech(pcm, 22050, min_s=8.0, max_s=20.0)


async def test_piper_stops_when_the_listener_stops_and_goes_on_working(piper_tts) -> None:
    frames = piper_tts.synthesize(STORY)
    first = await anext(frames)
    assert first.data
    await frames.aclose()  # barge-in: must not wait for the remaining sentences
    pcm, _ = await collect(piper_tts.synthesize("Okay."))
    assert len(pcm) > 0


async def test_piper_calls_share_one_voice_and_run_concurrently(piper_tts) -> None:
    from voxgate.providers.tts.piper import PiperTTS

    other = PiperTTS(length_scale=1.2)
    assert other.voice() is piper_tts.voice()
    (a, _), (b, _) = await asyncio.gather(
        collect(piper_tts.synthesize(SENTENCE)), collect(other.synthesize(SENTENCE))
    )
    assert len(b) > len(a) * 1.05  # length_scale 1.2 speaks slower


async def test_piper_empty_text_yields_nothing(piper_tts) -> None:
    pcm, frames = await collect(piper_tts.synthesize("  \n "))
    assert frames == [] and pcm == b""


def test_piper_rejects_bad_options(tmp_path) -> None:
    pytest.importorskip("piper")
    from voxgate.providers.tts.piper import PiperTTS

    with pytest.raises(ProviderError, match="voice config"):
        PiperTTS(model_path=tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="volume"):
        PiperTTS(volume=2.0)


async def test_piper_speech_is_intelligible(piper_tts) -> None:
    """Transcribed by the local STT when one is installed (whisper); skipped otherwise."""
    try:
        stt = create("stt", "whisper")
    except ProviderNotFound as exc:
        pytest.skip(f"no local STT to check intelligibility: {exc}")
    pcm, _ = await collect(piper_tts.synthesize(SENTENCE))
    audio = convert_all(pcm, piper_tts.output_format, stt.input_format)
    stream = stt.stream()
    step = stt.input_format.frame_bytes(20)
    for start in range(0, len(audio), step):
        stream.push_audio(AudioFrame(audio[start : start + step], stt.input_format))
    stream.end_input()
    text = " ".join([event.text async for event in stream if event.kind == "final"])
    expected = words(SENTENCE)
    assert len(words(text) & expected) >= 0.8 * len(expected), text


def test_registry_creates_piper() -> None:
    pytest.importorskip("piper")
    from voxgate.providers.tts.piper import PiperTTS

    tts = create("tts", "piper", length_scale=0.9)
    assert type(tts) is PiperTTS and isinstance(tts, TTS)
    assert tts.syn_config.length_scale == 0.9


# --- espeak-ng --------------------------------------------------------------------------------


@needs_espeak
async def test_espeak_speaks() -> None:
    tts = EspeakTTS()
    pcm, frames = await collect(tts.synthesize(SENTENCE))
    assert all(f.format == AudioFormat(Encoding.PCM16, 22050) for f in frames)
    assert_speech(pcm, 22050, min_s=2.0, max_s=6.0)


@needs_espeak
async def test_espeak_options_change_the_speech() -> None:
    normal, _ = await collect(EspeakTTS().synthesize(SENTENCE))
    fast, _ = await collect(EspeakTTS(rate=300, voice="en-gb").synthesize(SENTENCE))
    assert len(fast) < len(normal) * 0.8


@needs_espeak
async def test_espeak_reads_text_that_looks_like_an_option() -> None:
    pcm, _ = await collect(EspeakTTS().synthesize("--help me please"))
    assert_speech(pcm, 22050, min_s=0.4, max_s=3.0)


@needs_espeak
async def test_espeak_unknown_voice_is_a_clear_error() -> None:
    with pytest.raises(ProviderError, match="exited with") as info:
        await collect(EspeakTTS(voice="xx-nosuchvoice").synthesize("hello"))
    assert not info.value.retryable


@needs_espeak
async def test_espeak_stops_early_without_leaving_a_process() -> None:
    frames = EspeakTTS().synthesize(STORY * 3)
    await anext(frames)
    await frames.aclose()


def test_espeak_missing_binary_names_the_package(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ProviderError, match=r"apt-get install espeak-ng") as info:
        EspeakTTS()
    assert not info.value.retryable
    with pytest.raises(ProviderError, match="not found on PATH"):
        create("tts", "espeak")


def test_wav_stream_header_fed_byte_by_byte() -> None:
    fmt = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
    wav = b"RIFF\xff\xff\xff\x7fWAVE" + b"fmt " + struct.pack("<I", 16) + fmt
    wav += b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd-sized chunk with its pad byte
    wav += b"data\xff\xff\xff\x7f" + b"\x01\x02\x03"
    header = _WavStreamHeader()
    out = None
    for i in range(len(wav)):
        out = header.feed(wav[i : i + 1])
        if out is not None:
            break
    assert header.sample_rate == 16000
    assert out == b"" and i == len(wav) - 4
    with pytest.raises(ValueError, match="WAV header"):
        _WavStreamHeader().feed(b"not a wav file at all")
