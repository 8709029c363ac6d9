"""The OpenAI Realtime wire shapes (`../shared/protocols/openai-realtime.md`), GA and beta side by side.

Pure functions and tables, no I/O and no session state: the audio format a call leg gets (§2, §7),
the `session.update` event (§2, nested GA or flat beta), tools and tool outputs as the API wants
them (§3), the server's effective audio format checked against ours, the text of an `error` event
(§4), and the server event names: the beta names of the renamed ones and those we have no use for.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from voxgate.audio.format import SLIN24, AudioFormat, Encoding
from voxgate.providers.base import ToolSpec
from voxgate.providers.realtime.base import RealtimeConfig
from voxgate.providers.secrets import Secret, redact

if TYPE_CHECKING:
    from voxgate.providers.realtime.openai import OpenAIRealtime

# Compact JSON for everything we send, non-ASCII text as is.
DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# The legacy (beta) names of the GA server events that were renamed (§4).
BETA_NAMES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
}

# Events we know and have nothing to do with (logged at debug level, like unknown ones).
QUIET = frozenset(
    {
        "session.created",
        "session.updated",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.created",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "input_audio_buffer.timeout_triggered",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "rate_limits.updated",
    }
)


def negotiate_format(telephony: AudioFormat, *, beta: bool = False) -> tuple[AudioFormat, Any]:
    """(the session's audio format, its wire value) for a call leg in `telephony` format.

    G.711 at 8 kHz goes as is; anything else is PCM16 at 24 kHz (§2: the only PCM rate)."""
    if telephony.sample_rate == 8000 and telephony.encoding is Encoding.ULAW:
        return telephony, ("g711_ulaw" if beta else {"type": "audio/pcmu"})
    if telephony.sample_rate == 8000 and telephony.encoding is Encoding.ALAW:
        return telephony, ("g711_alaw" if beta else {"type": "audio/pcma"})
    return SLIN24, ("pcm16" if beta else {"type": "audio/pcm", "rate": 24000})


def tool_to_wire(tool: ToolSpec) -> dict[str, Any]:
    """A tool as the Realtime API wants it: flat, unlike Chat Completions' nested `function`."""
    return {
        "type": "function",
        "name": tool.name,
        "description": tool.description,
        "parameters": dict(tool.parameters),
    }


def function_call_output(call_id: str, output: str) -> dict[str, Any]:
    """The `conversation.item.create` event that answers tool call `call_id` (§3)."""
    return {
        "type": "conversation.item.create",
        "item": {"type": "function_call_output", "call_id": call_id, "output": output},
    }


def turn_detection(p: OpenAIRealtime) -> dict[str, Any] | None:
    """The session's `turn_detection` (§2): None for manual turns."""
    if p.turn_detection is None:
        return None
    if p.turn_detection == "semantic_vad":
        detection: dict[str, Any] = {"type": "semantic_vad", "eagerness": p.eagerness}
    else:
        detection = {
            "type": "server_vad",
            "threshold": p.threshold,
            "prefix_padding_ms": p.prefix_padding_ms,
            "silence_duration_ms": p.silence_duration_ms,
        }
    if p.beta:  # the legacy shape of §2: no create/interrupt flags
        return detection
    detection["create_response"] = True
    detection["interrupt_response"] = True
    if p.idle_timeout_ms is not None and p.turn_detection == "server_vad":
        detection["idle_timeout_ms"] = p.idle_timeout_ms
    return detection


def session_update(p: OpenAIRealtime, config: RealtimeConfig, wire_format: Any) -> dict[str, Any]:
    """The `session.update` event (§2) for one call: GA nested shape, or beta flat."""
    tools = [tool_to_wire(tool) for tool in config.tools]
    voice = config.voice or p.voice
    if p.beta:
        session: dict[str, Any] = {
            "modalities": ["audio", "text"],
            "instructions": config.instructions,
            "voice": voice,
            "input_audio_format": wire_format,
            "output_audio_format": wire_format,
        }
        if p.transcription_model:
            session["input_audio_transcription"] = {"model": p.transcription_model}
        session["turn_detection"] = turn_detection(p)
        session["tools"] = tools
        session["tool_choice"] = "auto"
        if p.temperature is not None:
            session["temperature"] = p.temperature
        if p.max_output_tokens is not None:
            session["max_response_output_tokens"] = p.max_output_tokens
        return {"type": "session.update", "session": session}
    audio_in: dict[str, Any] = {"format": dict(wire_format)}
    if p.noise_reduction:
        audio_in["noise_reduction"] = {"type": p.noise_reduction}
    if p.transcription_model:
        audio_in["transcription"] = {"model": p.transcription_model, "language": config.language}
    audio_in["turn_detection"] = turn_detection(p)
    audio_out: dict[str, Any] = {"format": dict(wire_format), "voice": voice}
    if p.speed is not None:
        audio_out["speed"] = p.speed
    session = {
        "type": "realtime",
        "model": p.model,
        "instructions": config.instructions,
        "output_modalities": ["audio"],
        "audio": {"input": audio_in, "output": audio_out},
        "tools": tools,
        "tool_choice": "auto",
    }
    if p.max_output_tokens is not None:
        session["max_output_tokens"] = p.max_output_tokens
    return {"type": "session.update", "session": session}


def format_mismatch(session: dict[str, Any], wire_format: Any, *, beta: bool) -> str | None:
    """Why the effective `session` (from `session.updated`) does not use the audio format asked for,
    or None when it does (or does not say)."""
    if beta:
        got = [session.get("input_audio_format"), session.get("output_audio_format")]
    else:
        audio = session.get("audio") or {}
        got = [(audio.get(way) or {}).get("format") for way in ("input", "output")]
    want = wire_format if beta else wire_format["type"]
    for way, value in zip(("input", "output"), got, strict=True):
        if isinstance(value, dict):
            value = value.get("type")
        if value is not None and value != want:
            return f"the server set the {way} audio format to {value!r}, not the {want!r} asked for"
    return None


def error_text(event: dict[str, Any], secret: Secret) -> tuple[str, str | None]:
    """(message, code) of an `error` event (or any event carrying an `error`), `secret` redacted."""
    err = event.get("error") or {}
    if not isinstance(err, dict):
        return redact(str(err), secret), None
    message = str(err.get("message") or "no message")
    if err.get("param"):
        message += f" (param {err['param']})"
    code = err.get("code") or err.get("type")
    return redact(message, secret), str(code) if code else None
