"""Providers by name through entry points, imported lazily, with errors that say what to install."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint, entry_points

import pytest

from voxgate.audio.format import SLIN16, AudioFormat
from voxgate.providers import LLM, STT, TTS, VAD, ProviderNotFound, available, create, registry
from voxgate.testing.fakes import ScriptedLLM, ScriptedSTT, ScriptedTTS, ScriptedVAD


def test_installed_metadata_declares_the_groups() -> None:
    """Needs `pip install -e .` after pyproject changes: this reads the installed entry points."""
    for kind, cls in [
        ("stt", "ScriptedSTT"),
        ("llm", "ScriptedLLM"),
        ("tts", "ScriptedTTS"),
        ("vad", "ScriptedVAD"),
    ]:
        eps = {ep.name: ep.value for ep in entry_points(group=f"voxgate.{kind}")}
        assert eps.get("scripted") == f"voxgate.testing.fakes:{cls}"
        assert "scripted" in available(kind)


@pytest.mark.parametrize(
    ("kind", "cls", "protocol"),
    [
        ("stt", ScriptedSTT, STT),
        ("llm", ScriptedLLM, LLM),
        ("tts", ScriptedTTS, TTS),
        ("vad", ScriptedVAD, VAD),
    ],
)
def test_create_builds_the_registered_provider(kind: str, cls: type, protocol: type) -> None:
    provider = create(kind, "scripted")
    assert type(provider) is cls
    assert isinstance(provider, protocol)


def test_create_passes_options() -> None:
    llm = create("llm", "scripted", replies=["hi"], token_delay=0.01, name="mine")
    assert llm.name == "mine" and llm.token_delay == 0.01


def test_unknown_name_lists_what_is_available_and_the_extra_to_install() -> None:
    with pytest.raises(ProviderNotFound) as info:
        create("tts", "cartesia")  # a vendor with a known extra that is not installed here
    msg = str(info.value)
    assert "no tts provider named 'cartesia'" in msg
    assert "scripted" in msg.partition("available: ")[2].partition(";")[0].split(", ")
    assert "pip install 'voxgate[cartesia]'" in msg

    with pytest.raises(ProviderNotFound, match=r"available: (\w+, )*scripted") as info:
        create("tts", "nosuchvoice")
    assert "pip install" not in str(info.value)  # no made-up extra for an unknown name


def test_unknown_kind() -> None:
    with pytest.raises(ProviderNotFound, match="unknown provider kind 'asr'; use one of stt, llm, tts, vad"):
        available("asr")


def test_missing_dependency_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="deepgram", value="voxgate_no_such_sdk.stt:DeepgramSTT", group="voxgate.stt")
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep] if group == "voxgate.stt" else [])
    with pytest.raises(ProviderNotFound) as info:
        create("stt", "deepgram")
    msg = str(info.value)
    assert "could not be imported" in msg and "voxgate_no_such_sdk" in msg
    assert "pip install 'voxgate[deepgram]'" in msg


def test_module_path_names_and_type_check() -> None:
    tts = create("tts", "voxgate.testing.fakes:ScriptedTTS", ms_per_char=10)
    assert isinstance(tts, ScriptedTTS) and tts.ms_per_char == 10
    with pytest.raises(ProviderNotFound, match=r"cannot load llm provider 'voxgate\.testing\.fakes:Nope'"):
        create("llm", "voxgate.testing.fakes:Nope")
    with pytest.raises(ProviderNotFound, match="built a dict, which is not a LLM"):
        create("llm", "builtins:dict")


class WordBatch:
    name = "words"
    input_format = SLIN16

    async def transcribe(self, pcm: bytes, fmt: AudioFormat) -> str:
        return "words"


def test_batch_stt_is_wrapped_to_stream() -> None:
    stt = create("stt", f"{__name__}:WordBatch")
    assert isinstance(stt, STT)
    assert type(stt).__name__ == "BatchSTTAdapter"


def test_provider_modules_are_imported_only_when_created() -> None:
    code = (
        "import sys\n"
        "from voxgate.providers import registry\n"
        "assert registry.available('llm')\n"
        "assert 'voxgate.testing.fakes' not in sys.modules, 'imported too early'\n"
        "registry.create('llm', 'scripted')\n"
        "assert 'voxgate.testing.fakes' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
