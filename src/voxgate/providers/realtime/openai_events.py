"""The conversation state of one OpenAI Realtime session, kept from the server's events.

`Conversation` turns server events (§4) into `RealtimeEvent`s and keeps what the client events
depend on: the reply in progress or owed (the watchdog reads `response_id` and `awaiting_since`),
the tool calls not answered yet, the audio received per assistant item and the item being played
(for `conversation.item.truncate`), and the replies cancelled by a barge-in, whose late audio is
dropped. The rules it follows (when the next reply is asked for, how a tool call with bad
arguments is answered, what a barge-in sends) are in the `openai` module docstring.

It does no I/O: the session hands it `emit` (queue a `RealtimeEvent`, tagged with the reply it
belongs to), `send` (queue a client event for the sender task) and `ended` (is the session over?).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import logging
import time
from collections.abc import Callable
from typing import Any, ClassVar

from voxgate.audio.format import AudioFormat, AudioFrame
from voxgate.providers.realtime.base import (
    AgentAudio,
    AgentAudioDone,
    RealtimeEvent,
    ResponseDone,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
    UserSpeechStopped,
)
from voxgate.providers.realtime.openai_wire import BETA_NAMES, DUMPS, QUIET, error_text, function_call_output
from voxgate.providers.secrets import Secret

log = logging.getLogger("voxgate.providers.realtime")

_KEEP_ITEMS = 8  # assistant items whose received audio length we remember (for truncate)
_KEEP_CANCELLED = 16  # cancelled response ids whose late audio we still drop


class Conversation:
    """One session's view of the conversation (see the module docstring)."""

    def __init__(
        self,
        *,
        name: str,
        output_format: AudioFormat,
        server_turns: bool,
        secret: Secret,
        log_extra: dict[str, Any],
        emit: Callable[[RealtimeEvent, str | None], None],
        send: Callable[[dict[str, Any]], None],
        ended: Callable[[], bool],
    ) -> None:
        self.name = name
        self._output_format = output_format
        self._server_turns = server_turns  # turn detection is on: speech_stopped means a reply is owed
        self._secret = secret
        self._log_extra = log_extra
        self._emit_entry = emit
        self._send = send
        self._is_ended = ended
        self._event_ids = itertools.count(1)
        self.response_id: str | None = None  # the reply in progress (response.created → done)
        self.awaiting_since: float | None = None  # a reply is owed but not created yet
        self._want_response = False  # tool outputs sent: ask for a reply once nothing blocks it
        self._open_calls: set[str] = set()  # tool calls not answered yet
        self._cancel_ids: set[str] = set()  # event_ids of our response.cancel (their errors are moot)
        self._create_id: str | None = None  # event_id of our last response.create
        self._cancelled: dict[str, None] = {}  # response ids whose audio we drop (ordered set)
        self._item_bytes: dict[str, int] = {}  # assistant item → audio bytes received
        self._playing_item: str | None = None  # item of the last AgentAudio handed out
        self._assistant_text: dict[str, str] = {}
        self._user_text: dict[str, str] = {}

    # -- what the session asks for --

    def create_response(self, response: dict[str, Any] | None = None) -> None:
        """Ask for a reply now (`response`: its options, e.g. the greeting's instructions)."""
        self._create_id = f"voxgate_response_{next(self._event_ids)}"
        event: dict[str, Any] = {"type": "response.create", "event_id": self._create_id}
        if response:
            event["response"] = response
        self._send(event)
        self.awaiting_since = time.monotonic()

    def commit(self) -> None:
        """The caller's turn is over (manual turns): commit the audio and ask for the answer."""
        self._send({"type": "input_audio_buffer.commit"})
        self._want_response = True
        self._maybe_create_response()

    def tool_result(self, call_id: str, output: str) -> None:
        """Send a tool's output; the next reply is asked for once nothing blocks it."""
        self._send(function_call_output(call_id, output))
        self._open_calls.discard(call_id)
        self._want_response = True
        self._maybe_create_response()

    def user_text(self, text: str) -> None:
        """Something the caller did that the model cannot hear (keys pressed): a user text item,
        then a reply once nothing blocks it."""
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
        self._send({"type": "conversation.item.create", "item": item})
        self._want_response = True
        self._maybe_create_response()

    def interrupt(self, played_ms: float) -> None:
        """Barge-in (§6): truncate what the caller heard, cancel the reply, drop its late audio."""
        item = self._playing_item
        if item is not None and played_ms > 0:
            received_ms = self._output_format.duration_ms(self._item_bytes.get(item, 0))
            end_ms = int(min(played_ms, received_ms))
            self._send(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item,
                    "content_index": 0,
                    "audio_end_ms": end_ms,
                }
            )
            self._playing_item = None  # truncated once is enough
        response_id = self.response_id
        if response_id is not None:
            event_id = f"voxgate_cancel_{next(self._event_ids)}"
            self._cancel_ids.add(event_id)
            self._send({"type": "response.cancel", "event_id": event_id, "response_id": response_id})
            self._drop(response_id)

    def hand_out(self, response_id: str | None, event: RealtimeEvent) -> bool:
        """Whether a queued event still goes to the caller (not the audio of a reply cut off
        after it was queued); notes the item whose audio is being handed out."""
        if response_id is not None and response_id in self._cancelled:
            return False
        if isinstance(event, AgentAudio):
            self._playing_item = event.item_id
        return True

    # -- server events --

    def handle(self, event: dict[str, Any]) -> None:
        """One parsed server event (a dict with a string `type`), GA or beta names."""
        kind = BETA_NAMES.get(event["type"], event["type"])
        if kind in QUIET:
            return
        handler = self._HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)
        else:
            log.debug("%s: ignoring %s", self.name, kind, extra=self._log_extra)

    def _emit(self, event: RealtimeEvent, response_id: str | None = None) -> None:
        self._emit_entry(event, response_id)

    def _on_speech_started(self, event: dict[str, Any]) -> None:
        self._emit(UserSpeechStarted())

    def _on_speech_stopped(self, event: dict[str, Any]) -> None:
        if self._server_turns and self.response_id is None:
            self.awaiting_since = time.monotonic()  # the server VAD owes us a reply now
        self._emit(UserSpeechStopped())

    def _on_user_transcript_delta(self, event: dict[str, Any]) -> None:
        item = str(event.get("item_id"))
        text = self._user_text[item] = self._user_text.get(item, "") + str(event.get("delta") or "")
        self._emit(Transcript("user", text, final=False))

    def _on_user_transcript(self, event: dict[str, Any]) -> None:
        self._user_text.pop(str(event.get("item_id")), None)
        self._emit(Transcript("user", str(event.get("transcript") or "")))

    def _on_user_transcript_failed(self, event: dict[str, Any]) -> None:
        message, code = error_text(event, self._secret)
        log.warning(
            "%s: transcribing the caller failed: %s (%s)", self.name, message, code, extra=self._log_extra
        )

    def _on_response_created(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        self.response_id = str(response.get("id") or "")
        self.awaiting_since = None

    def _on_audio_delta(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id")
        if response_id in self._cancelled:
            return
        try:
            data = base64.b64decode(event.get("delta") or "", validate=True)
        except (binascii.Error, ValueError):
            log.warning("%s: an audio delta is not base64; dropped", self.name, extra=self._log_extra)
            return
        item = event.get("item_id")
        if item is not None:
            if item not in self._item_bytes and len(self._item_bytes) >= _KEEP_ITEMS:
                del self._item_bytes[next(iter(self._item_bytes))]
            self._item_bytes[item] = self._item_bytes.get(item, 0) + len(data)
        self._emit(AgentAudio(AudioFrame(data, self._output_format), item), response_id)

    def _on_audio_done(self, event: dict[str, Any]) -> None:
        response_id = event.get("response_id")
        if response_id not in self._cancelled:
            self._emit(AgentAudioDone(event.get("item_id")), response_id)

    def _on_assistant_transcript_delta(self, event: dict[str, Any]) -> None:
        item = str(event.get("item_id"))
        text = self._assistant_text[item] = self._assistant_text.get(item, "") + str(event.get("delta") or "")
        self._emit(Transcript("assistant", text, final=False))

    def _on_assistant_transcript(self, event: dict[str, Any]) -> None:
        partial = self._assistant_text.pop(str(event.get("item_id")), "")
        self._emit(Transcript("assistant", str(event.get("transcript") or partial)))

    def _on_function_call(self, event: dict[str, Any]) -> None:
        call_id = str(event.get("call_id") or "")
        name = str(event.get("name") or "")
        raw = event.get("arguments") or ""
        problem: str | None = None
        arguments: Any = {}
        try:
            arguments = json.loads(raw) if str(raw).strip() else {}
        except (TypeError, ValueError) as exc:
            problem = f"the arguments are not valid JSON ({exc})"
        if problem is None and not isinstance(arguments, dict):
            problem = f"the arguments are a JSON {type(arguments).__name__}, not an object"
        if problem is None:
            self._open_calls.add(call_id)
            self._emit(ToolCall(call_id, name, arguments))
            return
        # Answer the call ourselves: a call with no output would leave the model waiting for one.
        shown = raw if len(raw) <= 200 else raw[:200] + "…"
        self._emit(
            SessionError(
                f"tool call {name!r} ({call_id}): {problem}: {shown!r}", code="invalid_tool_arguments"
            )
        )
        output = {"error": f"{problem}; call {name} again with a JSON object as its arguments"}
        self._send(function_call_output(call_id, DUMPS(output)))
        self._want_response = True
        self._maybe_create_response()

    def _on_response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response") or {}
        status = str(response.get("status") or "completed")
        details = response.get("status_details") or {}
        error = details.get("error") or {}
        reason = details.get("reason") or error.get("message") or error.get("code")
        if status == "failed":
            log.warning("%s: reply failed: %s", self.name, reason, extra=self._log_extra)
        self.response_id = None
        self._emit(ResponseDone(status, str(reason) if reason is not None else None))
        self._maybe_create_response()

    def _on_error(self, event: dict[str, Any]) -> None:
        message, code = error_text(event, self._secret)
        err = event.get("error") or {}
        if err.get("event_id") in self._cancel_ids:
            log.debug(
                "%s: our response.cancel came too late (%s); ignored",
                self.name,
                message,
                extra=self._log_extra,
            )
            return
        if err.get("event_id") == self._create_id:
            self.awaiting_since = None  # our response.create was refused: no reply is coming
        log.warning("%s: server error: %s (%s)", self.name, message, code, extra=self._log_extra)
        self._emit(SessionError(message, fatal=False, code=code))

    _HANDLERS: ClassVar[dict[str, Callable[[Conversation, dict[str, Any]], None]]] = {
        "input_audio_buffer.speech_started": _on_speech_started,
        "input_audio_buffer.speech_stopped": _on_speech_stopped,
        "conversation.item.input_audio_transcription.delta": _on_user_transcript_delta,
        "conversation.item.input_audio_transcription.completed": _on_user_transcript,
        "conversation.item.input_audio_transcription.failed": _on_user_transcript_failed,
        "response.created": _on_response_created,
        "response.output_audio.delta": _on_audio_delta,
        "response.output_audio.done": _on_audio_done,
        "response.output_audio_transcript.delta": _on_assistant_transcript_delta,
        "response.output_audio_transcript.done": _on_assistant_transcript,
        "response.function_call_arguments.done": _on_function_call,
        "response.done": _on_response_done,
        "error": _on_error,
    }

    # -- helpers --

    def _maybe_create_response(self) -> None:
        """Ask for the reply to tool outputs once no reply is running and no call is unanswered."""
        if (
            self._want_response
            and self.response_id is None
            and self.awaiting_since is None
            and not self._open_calls
            and not self._is_ended()
        ):
            self._want_response = False
            self.create_response()

    def _drop(self, response_id: str) -> None:
        self._cancelled[response_id] = None
        while len(self._cancelled) > _KEEP_CANCELLED:
            del self._cancelled[next(iter(self._cancelled))]
