"""Prometheus metrics, read from the counters calls already keep (nothing on the per-frame path)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

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


class AriCollector(Collector):
    """ARI state and outbound calls, read at scrape time from the server's objects."""

    def __init__(self, server: Any) -> None:  # a VoxgateServer
        self._server = server

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        events, router, queue = self._server.ari_events, self._server.ari_router, self._server.outbound
        if events is not None:
            yield GaugeMetricFamily(
                "voxgate_ari_connected",
                "1 while the ARI events WebSocket is connected",
                value=int(events.is_connected),
            )
            yield CounterMetricFamily(
                "voxgate_ari_reconnects",
                "Times the ARI events WebSocket reconnected",
                value=max(0, events.connects - 1),
            )
        if router is not None:
            yield GaugeMetricFamily(
                "voxgate_ari_calls", "ARI calls in progress (inbound and outbound)", value=len(router.calls)
            )
            yield CounterMetricFamily(
                "voxgate_ari_calls_refused",
                "Stasis calls sent back to the dialplan: at capacity",
                value=router.refused,
            )
        if queue is not None:
            st = queue.stats
            yield GaugeMetricFamily(
                "voxgate_outbound_queued", "Outbound calls waiting to be dialled", value=st.queued
            )
            yield GaugeMetricFamily(
                "voxgate_outbound_in_flight", "Outbound calls dialling or talking", value=st.in_flight
            )
            results = CounterMetricFamily(
                "voxgate_outbound_results", "Outbound dial attempts, by result", labels=["result"]
            )
            for result in ("answered", "machine", "busy", "no_answer"):
                results.add_metric([result], getattr(st, result))
            for cause, n in sorted(st.failed_by_cause.items()):
                results.add_metric([f"failed:{cause}"], n)
            yield results
