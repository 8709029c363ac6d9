"""VoiceApp routing and CallSession operations on simulated calls with scripted providers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np
import pytest

from voxgate.audio.format import AudioFrame
from voxgate.audio.wav import write_wav
from voxgate.telephony.session import (
    AgentResponse,
    CallEnded,
    CallSession,
    CallStarted,
    Dtmf,
    MediaStarted,
    MediaStopped,
    NotSupported,
    Transcript,
)
from voxgate.telephony.voice_app import VoiceApp
from voxgate.testing.fakes import ScriptedSTT, ScriptedTTS, ScriptedVAD
from voxgate.testing.harness import SimulatedCall, tone
from voxgate.transports.base import CallAudio
from voxgate.transports.base import Dtmf as InboundDtmf


@dataclass
class FakeContext:
    caller_number: str = ""
    exten: str = ""
    args: tuple[str, ...] = ()
    caller_channel_id: str = "chan-1"


class EchoKeysAgent:
    """A tiny agent: plays a short tone, then returns when the caller presses a key."""

    name = "echo-keys"

    def __init__(self) -> None:
        self.frames = 0
        self.keys: list[str] = []

    async def handle(self, call: CallAudio) -> None:
        call.output.write(AudioFrame(tone(200, hz=1000.0), call.inbound_format))
        call.output.flush()
        async for event in call:
            if isinstance(event, InboundDtmf):
                self.keys.append(event.digit)
                return
            self.frames += 1


def make_app(**kwargs: object) -> VoiceApp:
    return VoiceApp(
        tts=ScriptedTTS(ms_per_char=10),
        stt=ScriptedSTT(["I need help"]),
        vad_factory=lambda: ScriptedVAD(),
        **kwargs,  # type: ignore[arg-type]
    )


def contexts(mapping: dict[str, FakeContext]):  # type: ignore[no-untyped-def]
    return mapping.get


async def run(app: VoiceApp, call: SimulatedCall, drive, within_ms: float = 5000) -> None:  # type: ignore[no-untyped-def]
    task = asyncio.create_task(app.handle(call))
    await drive(call)
    await call.until(task.done, within_ms=within_ms)
    await task


def marker(log: list[str], label: str):  # type: ignore[no-untyped-def]
    async def handler(session: CallSession) -> None:
        log.append(label)

    return handler


async def test_routes_by_dialed_caller_uuid_args_and_default() -> None:
    calls = {
        "a": FakeContext(exten="1000"),
        "b": FakeContext(caller_number="+15551234"),
        "d": FakeContext(args=("vip", "x")),
        "e": FakeContext(exten="9999"),
    }
    app = make_app(contexts=contexts(calls))
    seen: list[str] = []
    app.route("1000")(marker(seen, "dialed"))
    app.route(caller="+15551234")(marker(seen, "caller"))
    app.route(uuid="c")(marker(seen, "uuid"))
    app.route(args="vip")(marker(seen, "args"))
    app.default()(marker(seen, "default"))

    for call_id in ("a", "b", "c", "d", "e"):
        call = SimulatedCall(call_id=call_id)

        async def nothing(call: SimulatedCall) -> None:
            pass

        await run(app, call, nothing)
        assert call.hung_up == "handler returned"
    assert seen == ["dialed", "caller", "uuid", "args", "default"]


async def test_agent_name_route_and_no_route_hangs_up() -> None:
    agent = EchoKeysAgent()
    app = make_app(agents={"reception": agent}, contexts=contexts({"x": FakeContext(exten="2000")}))
    app.route("2000", agent="reception")

    call = SimulatedCall(call_id="x")

    async def press(call: SimulatedCall) -> None:
        await call.silence(100)
        await call.press("5")

    await run(app, call, press)
    assert agent.keys == ["5"] and agent.frames > 0
    assert call.agent_audio_ms > 0

    lost = SimulatedCall(call_id="nowhere")
    await app.handle(lost)
    assert lost.hung_up == "no route"


async def test_default_agent_takes_unrouted_calls() -> None:
    agent = EchoKeysAgent()
    app = VoiceApp(agent)
    call = SimulatedCall()

    async def press(call: SimulatedCall) -> None:
        await call.press("1")

    await run(app, call, press)
    assert agent.keys == ["1"]


async def test_handler_says_listens_collects_keys_runs_agent_and_hangs_up() -> None:
    agent = EchoKeysAgent()
    app = make_app(agents={"helper": agent})
    results: dict[str, str] = {}

    @app.default()
    async def menu(session: CallSession) -> None:
        await session.say("Welcome")
        results["heard"] = await session.listen(timeout_s=5)
        results["pin"] = await session.listen_dtmf(timeout_s=5, digits=4)
        await session.run_agent("helper")
        await session.hangup("done")

    call = SimulatedCall()

    async def caller(call: SimulatedCall) -> None:
        await call.until(lambda: call.agent_audio_ms > 0, within_ms=2000)
        await call.until(lambda: not call.agent_talking(), within_ms=2000)
        await call.silence(200)
        await call.say(tone(600))
        await call.until(lambda: "heard" in results, within_ms=3000)
        await call.press("1234")
        await call.until(lambda: "pin" in results, within_ms=1000)
        await call.silence(100)
        await call.press("9")

    await run(app, call, caller)
    assert results == {"heard": "I need help", "pin": "1234"}
    assert agent.keys == ["9"]
    assert call.hung_up == "done"


async def test_listen_times_out_and_dtmf_terminator() -> None:
    app = make_app()
    results: dict[str, str] = {}

    @app.default()
    async def h(session: CallSession) -> None:
        results["heard"] = await session.listen(timeout_s=0.5)
        results["keys"] = await session.listen_dtmf(timeout_s=5, digits=6, terminator="#")
        results["late"] = await session.listen_dtmf(timeout_s=0.3)

    call = SimulatedCall()

    async def caller(call: SimulatedCall) -> None:
        await call.until(lambda: "heard" in results, within_ms=1000)
        await call.press("42#")

    await run(app, call, caller)
    assert results == {"heard": "", "keys": "42", "late": ""}


def _band_energy(pcm: bytes, rate: int, hz: float) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[np.abs(freqs - hz) < 10].max())


async def test_send_dtmf_plays_in_band_tones() -> None:
    app = make_app()

    @app.default()
    async def h(session: CallSession) -> None:
        await session.send_dtmf("1")

    call = SimulatedCall()

    async def nothing(call: SimulatedCall) -> None:
        pass

    await run(app, call, nothing)
    audio = bytes(call.agent_audio)
    assert len(audio) >= 8000 * 2 * 0.2 * 0.9  # 100 ms tone + 100 ms gap
    low, high, off = (_band_energy(audio, 8000, hz) for hz in (697.0, 1209.0, 1477.0))
    assert low > 20 * off and high > 20 * off
    assert _band_energy(audio, 8000, 770.0) < low / 10


async def test_send_dtmf_uses_the_calls_own_method() -> None:
    sent: list[str] = []
    call = SimulatedCall()

    async def send_dtmf(digits: str) -> None:
        sent.append(digits)

    call.send_dtmf = send_dtmf  # type: ignore[attr-defined]
    session = make_app().session(call)
    await session.send_dtmf("12#")
    assert sent == ["12#"] and call.agent_audio_ms == 0


async def test_play_file_converts_any_rate(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "hello.wav"
    write_wav(path, tone(300, rate=16000), 16000)
    app = make_app()

    @app.default()
    async def h(session: CallSession) -> None:
        await session.play_file(path)

    call = SimulatedCall()

    async def nothing(call: SimulatedCall) -> None:
        pass

    await run(app, call, nothing)
    assert 280 <= call.agent_audio_ms <= 340


async def test_ari_operations_raise_not_supported_on_audiosocket_call() -> None:
    session = make_app().session(SimulatedCall(call_id="plain"))
    for op in (session.hold, session.unhold, session.answer, session.record_stop):
        with pytest.raises(NotSupported, match="needs an ARI call"):
            await op()
    with pytest.raises(NotSupported, match=r"hold\(\) needs an ARI call.*plain"):
        await session.hold()
    with pytest.raises(NotSupported, match="cannot transfer"):
        await session.transfer_to("200")


async def test_hold_through_ari_when_context_present() -> None:
    class FakeAri:
        def __init__(self) -> None:
            self.held: list[str] = []

        async def hold(self, channel_id: str) -> None:
            self.held.append(channel_id)

    ari = FakeAri()
    app = make_app(ari=ari)
    session = app.session(SimulatedCall(), FakeContext(caller_channel_id="PJSIP/alice-1"))
    await session.hold()
    assert ari.held == ["PJSIP/alice-1"]


async def test_transfer_uses_the_calls_transfer() -> None:
    call = SimulatedCall()
    targets: list[str] = []

    async def transfer(target: str) -> None:
        targets.append(target)

    call.transfer = transfer  # type: ignore[attr-defined]
    session = make_app().session(call)
    await session.transfer_to("2000")
    assert targets == ["2000"] and session.ended


async def test_events_queue() -> None:
    app = make_app(contexts=contexts({"ev": FakeContext(caller_number="+1555", exten="1000")}))
    sessions: list[CallSession] = []

    @app.route("1000")
    async def h(session: CallSession) -> None:
        sessions.append(session)
        assert (session.caller, session.dialed) == ("+1555", "1000")
        await session.say("Hi")
        await session.listen(timeout_s=5)
        await session.listen_dtmf(timeout_s=5, digits=2)

    call = SimulatedCall(call_id="ev")

    async def caller(call: SimulatedCall) -> None:
        await call.silence(200)
        await call.say(tone(600))
        await call.until(lambda: call.agent_audio_ms > 0 and not call.agent_talking(), within_ms=3000)
        await call.silence(1000)
        await call.press("77")

    await run(app, call, caller)
    queue = sessions[0].events
    events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert events == [
        CallStarted("ev", "+1555", "1000"),
        MediaStarted("pcm16@8000"),  # the simulated call's slin 8 kHz leg
        AgentResponse("Hi"),
        Transcript("I need help"),
        Dtmf("7"),
        Dtmf("7"),
        MediaStopped("handler returned"),
        CallEnded("handler returned"),
    ]


async def test_ari_operations_through_ari_client() -> None:
    class FakeAri:
        def __init__(self) -> None:
            self.calls: list[tuple[object, ...]] = []

        def __getattr__(self, method: str):  # type: ignore[no-untyped-def]
            async def record(*args: object, **kw: object) -> None:
                self.calls.append((method, *args, *kw.values()))

            return record

    ari = FakeAri()
    call = SimulatedCall()
    context = FakeContext(caller_channel_id="chan-9")
    session = make_app(ari=ari).session(call, context)
    with pytest.raises(NotSupported, match="no bridge"):
        await session.bridge_with("chan-2")
    with pytest.raises(NotSupported, match="no recording"):
        await session.record_stop()
    context.bridge_id = "br-1"  # type: ignore[attr-defined]
    await session.answer()
    await session.unhold()
    await session.record_start("msg", max_duration_seconds=30)
    await session.record_stop()
    await session.bridge_with("chan-2")
    await session.send_dtmf("12")
    assert ari.calls == [
        ("answer", "chan-9"),
        ("unhold", "chan-9"),
        ("record", "chan-9", "msg", "wav", 30),
        ("stop_live_recording", "msg"),
        ("add_channel", "br-1", "chan-2"),
        ("send_dtmf", "chan-9", "12"),
    ]
    assert call.agent_audio_ms == 0  # DTMF went through Asterisk, not in-band


async def test_caller_hangup_ends_listen_and_session() -> None:
    app = make_app()
    results: dict[str, str] = {}
    sessions: list[CallSession] = []

    @app.default()
    async def h(session: CallSession) -> None:
        sessions.append(session)
        results["heard"] = await session.listen(timeout_s=30)
        results["keys"] = await session.listen_dtmf(timeout_s=30, digits=3)

    call = SimulatedCall()
    task = asyncio.create_task(app.handle(call))
    await call.silence(100)
    await call.press("1")
    call.end()
    await call.settle()
    await asyncio.wait_for(task, 2)
    # The key pressed during listen() is typed ahead; the call's end returns what was collected.
    assert results == {"heard": "", "keys": "1"}
    events = [sessions[0].events.get_nowait() for _ in range(sessions[0].events.qsize())]
    assert events[-1] == CallEnded("caller hung up")


# --- voxgate serve --app ------------------------------------------------------------------------


def test_serve_app_loads_a_voice_app(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    from voxgate.agent.base import AgentError
    from voxgate.config import load_config
    from voxgate.server.app import VoxgateServer, build_agent

    module = types.ModuleType("my_ivr")
    module.app = VoiceApp(name="my-ivr")  # type: ignore[attr-defined]
    module.make_app = lambda: VoiceApp(name="made")  # type: ignore[attr-defined]
    module.other = 42  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "my_ivr", module)
    config = load_config(
        overrides={"agent": "echo", "audiosocket.listen": "127.0.0.1:0", "http.listen": "127.0.0.1:0"}
    )

    server = VoxgateServer(config, app="my_ivr:app")
    assert server.agent is module.app  # type: ignore[attr-defined]
    assert module.app.resolve_agent("echo").name == "echo"  # type: ignore[attr-defined]
    assert build_agent(config, "my_ivr:make_app").name == "made"
    for spec, message in (
        ("my_ivr", "MODULE:ATTR"),
        ("my_ivr:nope", "cannot load"),
        ("no_such_module_xyz:app", "cannot load"),
        ("my_ivr:other", "not a VoiceApp"),
    ):
        with pytest.raises(AgentError, match=message):
            build_agent(config, spec)


def test_cli_serve_accepts_app() -> None:
    from voxgate.cli import _build_parser

    args = _build_parser().parse_args(["serve", "--app", "my_ivr:app"])
    assert args.app == "my_ivr:app"


async def test_handler_hands_the_call_to_a_pipeline_agent() -> None:
    from voxgate.agent.config import AgentConfig
    from voxgate.agent.pipeline import PipelineAgent

    config = AgentConfig.model_validate(
        {
            "name": "sales",
            "greeting": "Sales here.",
            "stt": {"name": "scripted", "transcripts": ["sales please", "what are your hours"]},
            "tts": {"name": "scripted", "ms_per_char": 10},
            "llm": {"name": "scripted", "replies": ["Nine to five."]},
            "vad": "scripted",
            "call": {"hangup_delay_ms": 0, "silence_reprompt_ms": None},
        }
    )
    sales = PipelineAgent(config)
    runners: list[object] = []
    sales.on_runner = runners.append  # type: ignore[assignment]
    app = VoiceApp(sales, agents={"sales": sales})  # providers come from the default agent
    heard: list[str] = []

    @app.route(uuid="pipeline")
    async def menu(session: CallSession) -> None:
        await session.say("Which department?")
        heard.append(await session.listen(timeout_s=5))
        await session.run_agent("sales")

    call = SimulatedCall(call_id="pipeline")
    task = asyncio.create_task(app.handle(call))
    await call.until(lambda: call.agent_audio_ms > 0 and not call.agent_talking(), within_ms=2000)
    await call.silence(200)
    await call.say(tone(600))
    await call.until(lambda: bool(runners), within_ms=3000)  # the agent took over
    await call.until(lambda: not call.agent_talking(), within_ms=3000)  # after its greeting
    await call.silence(200)
    await call.say(tone(600))
    await call.until(call.agent_talking, within_ms=3000)
    await call.until(lambda: not call.agent_talking(), within_ms=3000)
    call.end()
    await asyncio.wait_for(task, 5)
    assert heard == ["sales please"]
    assert runners[0].record.transcript() == [  # type: ignore[attr-defined]
        ("agent", "Sales here."),
        ("caller", "what are your hours"),
        ("agent", "Nine to five."),
    ]


async def test_prepare_prepares_the_known_agents() -> None:
    class Preparing(EchoKeysAgent):
        prepared = 0

        async def prepare(self) -> None:
            self.prepared += 1

    default, named, routed = Preparing(), Preparing(), Preparing()
    app = VoiceApp(default, agents={"a": named, "b": default})
    app.route("1", agent=routed)
    app.route("2", agent="by-name-only")
    await app.prepare()
    assert (default.prepared, named.prepared, routed.prepared) == (1, 1, 1)


async def test_routes_by_asterisk_patterns_and_pick_media() -> None:
    calls = {
        "a": FakeContext(exten="101"),
        "b": FakeContext(exten="1010"),
        "c": FakeContext(exten="2125551234"),
        "d": FakeContext(exten="+15551234567"),
        "e": FakeContext(exten="1234"),
    }
    app = make_app(contexts=contexts(calls))
    seen: list[str] = []
    app.route("_1XX", media="rtp")(marker(seen, "ext"))
    app.route("_NXXNXXXXXX", media="websocket")(marker(seen, "us10"))
    app.route("_+1.")(marker(seen, "e164"))
    app.default()(marker(seen, "default"))
    for call_id in ("a", "b", "c", "d", "e"):
        call = SimulatedCall(call_id=call_id)

        async def nothing(call: SimulatedCall) -> None:
            pass

        await run(app, call, nothing)
    assert seen == ["ext", "default", "us10", "e164", "default"]
    # The router asks which media leg an ARI call wants before it creates one.
    assert [app.media_for(calls[k]) for k in "abcde"] == ["rtp", None, "websocket", None, None]


def test_bad_route_pattern_or_media_fails_at_registration() -> None:
    app = make_app()
    with pytest.raises(ValueError, match=r"'\[' without '\]'"):
        app.route("_1[2-")(marker([], "x"))
    with pytest.raises(ValueError, match="use one of audiosocket, rtp, websocket"):
        app.route("100", media="sip")
