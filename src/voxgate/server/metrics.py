"""Prometheus metrics, read from the counters calls already keep (nothing on the per-frame path)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from voxgate.agent.record import TurnTiming
from voxgate.transports.audiosocket.server import AudioSocketServer

DURATION_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class _AudioSocketCollector(Collector):
    def __init__(self, server: AudioSocketServer) -> None:
        self._server = server

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        srv = self._server
        st = srv.stats
        calls = list(srv.calls)
        clock = srv.clock.stats
        yield GaugeMetricFamily("voxgate_active_calls", "Calls in progress", value=len(calls))
        yield GaugeMetricFamily(
            "voxgate_max_calls", "Configured cap on concurrent calls", value=srv.options.max_calls
        )
        yield CounterMetricFamily("voxgate_calls", "Calls admitted", value=st.calls_total)
        yield CounterMetricFamily(
            "voxgate_calls_refused",
            "Connections refused (capacity or shutdown)",
            value=st.calls_refused,
        )
        ended = CounterMetricFamily("voxgate_calls_ended", "Calls ended, by cause", labels=["cause"])
        for cause, n in sorted(st.ended.items()):
            ended.add_metric([cause], n)
        yield ended
        yield CounterMetricFamily(
            "voxgate_frames_in",
            "Audio frames received",
            value=st.frames_in + sum(c.frames_in for c in calls),
        )
        yield CounterMetricFamily(
            "voxgate_frames_out",
            "Audio frames sent (speech and keep-alive silence)",
            value=st.frames_out + sum(c.output.frames_sent for c in calls),
        )
        yield CounterMetricFamily(
            "voxgate_frames_dropped",
            "Outbound frames not sent because the peer was not reading",
            value=st.frames_dropped + sum(c.frames_dropped for c in calls),
        )
        yield CounterMetricFamily(
            "voxgate_clock_late_ticks",
            "Media clock ticks more than 5 ms late",
            value=clock.late_ticks,
        )
        yield CounterMetricFamily(
            "voxgate_clock_missed_slots",
            "20 ms slots skipped because the media clock fell a frame behind",
            value=clock.missed_slots,
        )


def build_registry(server: AudioSocketServer) -> tuple[CollectorRegistry, Histogram]:
    registry = CollectorRegistry()
    registry.register(_AudioSocketCollector(server))
    durations = Histogram(
        "voxgate_call_duration_seconds",
        "Call durations",
        buckets=DURATION_BUCKETS,
        registry=registry,
    )
    return registry, durations


TURN_BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0)
TURN_STAGES = {
    "stt": "stt_ms",
    "first_text": "llm_first_token_ms",
    "tts_first_audio": "tts_first_audio_ms",
    "first_frame_out": "first_frame_out_ms",
}


class TurnMetrics:
    """Per-reply latency histograms, observed once per turn (never on the frame path)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stages = Histogram(
            "voxgate_turn_stage_seconds",
            "Time from the end-of-turn decision to each stage of the reply",
            ["stage"],
            buckets=TURN_BUCKETS,
            registry=registry,
        )
        self.voice_to_voice = Histogram(
            "voxgate_voice_to_voice_seconds",
            "End of caller speech to the first reply audio frame sent (endpointing included)",
            buckets=TURN_BUCKETS,
            registry=registry,
        )

    def observe(self, timing: TurnTiming) -> None:
        if timing.source != "speech":
            return
        for stage, attr in TURN_STAGES.items():
            value = getattr(timing, attr)
            if value is not None:
                self.stages.labels(stage).observe(value / 1000)
        if (v2v := timing.voice_to_voice_ms) is not None:
            self.voice_to_voice.observe(v2v / 1000)


def drain_durations(server: AudioSocketServer, histogram: Histogram) -> None:
    for d in server.stats.durations:
        histogram.observe(d)
    server.stats.durations.clear()
