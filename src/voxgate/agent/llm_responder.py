"""`LLMResponder`: the reply to each caller turn comes from a streaming LLM, with tools.

Text deltas are passed on as they arrive (the runner speaks each sentence as soon as it is
complete). Tool calls: the built-in call-control tools become actions (end call, transfer,
send DTMF); user tools (Python functions, webhooks) run here and their results go back to the
model, which then continues the reply. The markers `[END_CALL]` and `[VOICEMAIL]` in the text
are removed from what is spoken and end the call after the words before them have played.

If the LLM fails before saying anything, a `fallback` responder (the flow agent, typically)
answers the turn instead, so a caller is never left in silence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing

from voxgate.agent.actions import run_tool
from voxgate.agent.responder import (
    Action,
    Conversation,
    EndCall,
    Responder,
    ResponseItem,
    Transfer,
    UserInput,
)
from voxgate.agent.tools import Tool, ToolContext, builtin_tool_specs
from voxgate.log import call_logger
from voxgate.providers.base import LLM, ChatMessage, ProviderError, TextDelta, ToolCallEvent

MARKERS = {"[END_CALL]": "agent ended the call", "[VOICEMAIL]": "reached voicemail"}
_LONGEST_MARKER = max(len(m) for m in MARKERS)


class MarkerFilter:
    """Removes `[END_CALL]` / `[VOICEMAIL]` from streamed text, even when split across deltas."""

    def __init__(self) -> None:
        self._held = ""
        self.found: list[str] = []

    def push(self, text: str) -> str:
        buf = self._held + text
        out: list[str] = []
        while True:
            i = buf.find("[")
            if i < 0:
                out.append(buf)
                buf = ""
                break
            out.append(buf[:i])
            buf = buf[i:]
            marker = next((m for m in MARKERS if buf.upper().startswith(m)), None)
            if marker is not None:
                self.found.append(marker)
                buf = buf[len(marker) :]
                continue
            if len(buf) < _LONGEST_MARKER and any(m.startswith(buf.upper()) for m in MARKERS):
                break  # might still become a marker: hold it
            out.append("[")
            buf = buf[1:]
        self._held = buf
        return "".join(out)

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


class LLMResponder:
    """Replies from `llm`, with `tools` and the built-in call-control tools."""

    name = "llm"

    def __init__(
        self,
        llm: LLM,
        *,
        greeting: str | None = None,
        tools: Sequence[Tool] = (),
        builtin_tools: Sequence[str] = ("end_call", "transfer_call", "send_dtmf"),
        context: ToolContext | None = None,
        max_tool_rounds: int = 4,
        fallback: Responder | None = None,
        transfer_targets: Sequence[str] | None = None,
    ) -> None:
        self.llm = llm
        self._greeting = greeting
        self.tools = {t.name: t for t in tools}
        self.builtin = frozenset(builtin_tools)
        self.transfer_targets = transfer_targets
        self.specs = [
            *builtin_tool_specs(builtin_tools, transfer_targets=transfer_targets),
            *(t.spec for t in tools),
        ]
        self.context = context or ToolContext(call_id="-")
        self.max_tool_rounds = max_tool_rounds
        self.fallback = fallback
        self._log = call_logger("voxgate.agent", self.context.call_id)

    def greeting(self) -> str | None:
        return self._greeting

    async def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        mark = conversation.mark()
        conversation.add_user(turn.as_message_text())
        for _round in range(self.max_tool_rounds + 1):
            said: list[str] = []
            calls: list[ToolCallEvent] = []
            markers = MarkerFilter()
            complete = False  # a stream cut off (failure, barge-in) does not get its tool calls run
            try:
                async with aclosing(self.llm.chat(list(conversation.messages), self.specs)) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            if text := markers.push(event.text):
                                said.append(text)
                                yield text
                        elif isinstance(event, ToolCallEvent):
                            calls.append(event)
                if text := markers.flush():
                    said.append(text)
                    yield text
                complete = True
            except ProviderError as exc:
                if said or calls or self.fallback is None or _round:
                    raise
                self._log.warning("LLM failed (%s); the fallback responder answers this turn", exc)
                del conversation.messages[mark:]
                async with aclosing(self.fallback.respond(turn, conversation)) as items:
                    async for item in items:
                        yield item
                return
            finally:
                if not complete:
                    calls = []
                if said or calls:
                    conversation.add(ChatMessage.assistant("".join(said), calls))
            answered = 0
            try:
                if markers.found:
                    yield EndCall(MARKERS[markers.found[0]])
                    return
                if not calls:
                    return
                ended = False
                for call in calls:
                    result, action = await self._run_tool(call)
                    conversation.add(ChatMessage.tool_result(call.id, result))
                    answered += 1
                    if action is not None:
                        yield action
                        ended = ended or isinstance(action, EndCall | Transfer)
                if ended:
                    return
            finally:  # APIs reject a tool call without a result: the next turn would fail
                for call in calls[answered:]:
                    conversation.add(ChatMessage.tool_result(call.id, "error: cut off before it finished"))
        self._log.warning("stopped after %d tool rounds", self.max_tool_rounds)

    async def _run_tool(self, call: ToolCallEvent) -> tuple[str, Action | None]:
        return await run_tool(
            call,
            builtin=self.builtin,
            tools=self.tools,
            context=self.context,
            transfer_targets=self.transfer_targets,
        )
