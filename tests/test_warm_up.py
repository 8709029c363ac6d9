"""`warm_up()` reaches models through every wrapper: fallbacks, the batch adapter, the TTS cache."""

from __future__ import annotations

from voxgate.agent.config import AgentConfig, ProviderConfig
from voxgate.agent.pipeline import PipelineAgent
from voxgate.audio.format import SLIN16
from voxgate.providers.base import warm_up
from voxgate.providers.batch_stt import BatchSTTAdapter
from voxgate.providers.fallback import FallbackSTT, FallbackTTS
from voxgate.providers.tts.cache import CachedTTS
from voxgate.testing import ScriptedTTS, ScriptedVAD


class ColdBatchSTT:
    name = "cold"
    input_format = SLIN16

    def __init__(self, fail: bool = False) -> None:
        self.warmed = 0
        self.fail = fail

    async def warm_up(self) -> None:
        self.warmed += 1
        if self.fail:
            raise RuntimeError("model file missing")

    async def transcribe(self, pcm: bytes, fmt: object) -> str:
        return ""


class ColdTTS(ScriptedTTS):
    warmed = 0

    async def warm_up(self) -> None:
        self.warmed += 1


async def test_warm_up_goes_through_the_wrappers() -> None:
    broken, good = ColdBatchSTT(fail=True), ColdBatchSTT()
    stt = FallbackSTT([BatchSTTAdapter(broken), BatchSTTAdapter(good)])
    tts_a, tts_b = ColdTTS(), ColdTTS()
    tts = CachedTTS(FallbackTTS([tts_a, tts_b]))
    await warm_up(stt)  # a provider that fails to warm up does not stop the others
    await warm_up(tts)
    assert (broken.warmed, good.warmed, tts_a.warmed, tts_b.warmed) == (1, 1, 1, 1)
    await warm_up(object())  # nothing to warm: fine


async def test_an_agent_prepares_its_models() -> None:
    stt, tts = ColdBatchSTT(), ColdTTS()
    config = AgentConfig(
        stt=[ProviderConfig(name="scripted")],
        llm=[ProviderConfig(name="scripted")],
        tts=[ProviderConfig(name="scripted")],
        vad=ProviderConfig(name="scripted"),
    )
    agent = PipelineAgent(
        config, stt=FallbackSTT([BatchSTTAdapter(stt)]), tts=FallbackTTS([tts]), vad_factory=ScriptedVAD
    )
    await agent.prepare()
    assert (stt.warmed, tts.warmed) == (1, 1)
