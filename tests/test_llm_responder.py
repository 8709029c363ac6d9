"""LLMResponder on its own: markers in streamed text, tool rounds, fallbacks, and the context it keeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any

import pytest

from voxgate.agent.llm_responder import LLMResponder, MarkerFilter
from voxgate.agent.responder import Conversation, EndCall, ResponseItem, SendDtmf, Transfer, UserInput
from voxgate.agent.tools import Tool, ToolContext
from voxgate.providers.base import ChatMessage, LLMDone, LLMEvent, ProviderError, TextDelta, ToolCallEvent
from voxgate.testing import Reply, ScriptedLLM

# --- MarkerFilter ----------------------------------------------------------------------------


def run_filter(pieces: Sequence[str]) -> tuple[str, list[str], list[str]]:
    """(all text out, markers found, what each push returned)."""
    f = MarkerFilter()
    outs = [f.push(p) for p in pieces]
    tail = f.flush()
    return "".join(outs) + tail, f.found, outs


@pytest.mark.parametrize(
    "pieces",
    [
        ["Goodbye! [END_CALL]"],
        ["Goodbye! [", "END_CALL]"],
        ["Goodbye! [END", "_CA", "LL]"],
        ["Goodbye!", " ", "[", "E", "N", "D", "_", "C", "A", "L", "L", "]"],
        ["Goodbye! [end_call]"],  # case does not matter
        ["Goodbye! [End_", "Call]"],
    ],
)
def test_end_call_marker_is_removed_wherever_the_deltas_split_it(pieces: list[str]) -> None:
    text, found, _ = run_filter(pieces)
    assert text == "Goodbye! "
    assert found == ["[END_CALL]"]


def test_a_possible_marker_is_held_only_until_it_cannot_be_one() -> None:
    f = MarkerFilter()
    assert f.push("Press [") == "Press "  # might be a marker: held
    assert f.push("E") == ""
    assert f.push("X") == "[EX"  # not a marker after all: released as it was
    assert f.push("] now") == "] now"
    assert f.found == []


@pytest.mark.parametrize(
    "pieces",
    [
        ["See [note] here."],
        ["See [no", "te] here."],
        ["Array [1] and [] and [[x]]."],
        ["A lone bracket at the end ["],
        ["Almost [END_CAL"],  # the stream ended before it was a marker
        ["[VOICE", "MAIL is not a marker without its bracket"],
    ],
)
def test_text_that_only_looks_like_a_marker_is_kept(pieces: list[str]) -> None:
    text, found, _ = run_filter(pieces)
    assert text == "".join(pieces)
    assert found == []


def test_several_markers_and_text_around_them() -> None:
    text, found, _ = run_filter(["Hi [[END_CALL] there [VOICEMAIL]", " bye[END_CALL]"])
    assert text == "Hi [ there  bye"
    assert found == ["[END_CALL]", "[VOICEMAIL]", "[END_CALL]"]


# --- helpers ---------------------------------------------------------------------------------


async def collect(responder: LLMResponder, turn: UserInput, conversation: Conversation) -> list[ResponseItem]:
    out: list[ResponseItem] = []
    async with aclosing(responder.respond(turn, conversation)) as items:
        async for item in items:
            out.append(item)
    return out


def text_of(items: Sequence[ResponseItem]) -> str:
    return "".join(i for i in items if isinstance(i, str))


# --- replies and markers ---------------------------------------------------------------------


async def test_a_plain_reply_streams_text_and_is_recorded() -> None:
    llm = ScriptedLLM(["We open at nine tomorrow."])
    conv = Conversation("Be brief.")
    items = await collect(LLMResponder(llm), UserInput("when do you open"), conv)
    assert all(isinstance(i, str) for i in items) and len(items) == 5  # word by word
    assert text_of(items) == "We open at nine tomorrow."
    assert llm.calls == [[ChatMessage.system("Be brief."), ChatMessage.user("when do you open")]]
    assert conv.messages[1:] == [
        ChatMessage.user("when do you open"),
        ChatMessage.assistant("We open at nine tomorrow."),
    ]


async def test_builtin_tools_are_offered_to_the_llm() -> None:
    seen: list[list[str]] = []

    class Spy(ScriptedLLM):
        def chat(self, messages: list[ChatMessage], tools: Sequence[Any] = ()) -> AsyncIterator[LLMEvent]:
            seen.append([t.name for t in tools])
            return super().chat(messages, tools)

    await collect(LLMResponder(Spy(["Hi."])), UserInput("hi"), Conversation())
    await collect(LLMResponder(Spy(["Hi."]), builtin_tools=("end_call",)), UserInput("hi"), Conversation())
    assert seen == [["end_call", "transfer_call", "send_dtmf"], ["end_call"]]


@pytest.mark.parametrize(
    ("marker", "reason"), [("[END_CALL]", "agent ended the call"), ("[VOICEMAIL]", "reached voicemail")]
)
async def test_a_marker_ends_the_call_after_the_words_and_is_not_kept(marker: str, reason: str) -> None:
    llm = ScriptedLLM([f"Thanks, goodbye. {marker}"])
    conv = Conversation()
    items = await collect(LLMResponder(llm), UserInput("bye"), conv)
    assert items[-1] == EndCall(reason)
    assert marker not in text_of(items) and text_of(items).strip() == "Thanks, goodbye."
    assert conv.messages[-1] == ChatMessage.assistant("Thanks, goodbye. ")


async def test_end_call_tool_yields_the_action_after_the_words_and_stops() -> None:
    llm = ScriptedLLM(
        [Reply("Goodbye then.", tool_calls=[ToolCallEvent("c1", "end_call", {"reason": "caller is done"})])]
    )
    conv = Conversation()
    items = await collect(LLMResponder(llm), UserInput("that's all"), conv)
    assert text_of(items) == "Goodbye then." and items[-1] == EndCall("caller is done")
    assert len(llm.calls) == 1  # no second round after ending the call
    assert conv.messages[-2:] == [
        ChatMessage.assistant(
            "Goodbye then.", [ToolCallEvent("c1", "end_call", {"reason": "caller is done"})]
        ),
        ChatMessage.tool_result("c1", "done"),
    ]


async def test_transfer_tool_becomes_a_transfer_action() -> None:
    llm = ScriptedLLM(
        [Reply("Transferring you.", tool_calls=[ToolCallEvent("t", "transfer_call", {"target": "200"})])]
    )
    items = await collect(LLMResponder(llm), UserInput("a human"), Conversation())
    assert items[-1] == Transfer("200") and len(llm.calls) == 1


async def test_send_dtmf_tool_continues_the_reply_after_the_keys() -> None:
    llm = ScriptedLLM([Reply("", tool_calls=[ToolCallEvent("d", "send_dtmf", {"digits": "1 2"})]), "Done."])
    conv = Conversation()
    items = await collect(LLMResponder(llm), UserInput("press one two"), conv)
    assert items == [SendDtmf("12"), "Done."]
    assert llm.calls[1][-1] == ChatMessage.tool_result("d", "done")


# --- user tools ------------------------------------------------------------------------------


async def test_a_user_tool_runs_and_its_result_goes_back_to_the_llm() -> None:
    calls: list[tuple[str, str]] = []

    def lookup_order(order_id: str, context: ToolContext) -> dict[str, str]:
        """Look up an order by its number."""
        calls.append((order_id, context.call_id))
        return {"status": "shipped"}

    tool = Tool.from_callable(lookup_order)
    llm = ScriptedLLM(
        [
            Reply("Let me check.", tool_calls=[ToolCallEvent("c1", "lookup_order", {"order_id": "A42"})]),
            "It has shipped.",
        ]
    )
    conv = Conversation("sys")
    responder = LLMResponder(llm, tools=[tool], context=ToolContext(call_id="call-7"))
    items = await collect(responder, UserInput("where is order A42"), conv)
    assert calls == [("A42", "call-7")]
    assert text_of(items) == "Let me check.It has shipped."
    expected = [
        ChatMessage.system("sys"),
        ChatMessage.user("where is order A42"),
        ChatMessage.assistant("Let me check.", [ToolCallEvent("c1", "lookup_order", {"order_id": "A42"})]),
        ChatMessage.tool_result("c1", '{"status": "shipped"}'),
    ]
    assert llm.calls[1] == expected  # called again, with the result
    assert conv.messages == [*expected, ChatMessage.assistant("It has shipped.")]
    assert "lookup_order" in [s.name for s in responder.specs]


async def test_a_builtin_tool_that_is_not_enabled_gets_an_error_result() -> None:
    llm = ScriptedLLM(
        [Reply("", tool_calls=[ToolCallEvent("c1", "end_call", {})]), "Sorry, I can't hang up."]
    )
    conv = Conversation()
    items = await collect(LLMResponder(llm, builtin_tools=("send_dtmf",)), UserInput("hang up"), conv)
    assert not any(isinstance(i, EndCall) for i in items)
    result = conv.messages[2]
    assert result.role == "tool" and result.tool_call_id == "c1"
    assert result.content.startswith("error:") and "end_call" in result.content
    assert text_of(items) == "Sorry, I can't hang up." and len(llm.calls) == 2


async def test_a_builtin_tool_with_bad_arguments_gets_an_error_result_for_the_model() -> None:
    llm = ScriptedLLM([Reply("", tool_calls=[ToolCallEvent("c1", "transfer_call", {})]), "Where to?"])
    conv = Conversation()
    items = await collect(LLMResponder(llm), UserInput("transfer me"), conv)
    assert items == ["Where", " to?"]
    assert conv.messages[2].content.startswith("error: transfer_call: 'target' is required")


async def test_tool_rounds_stop_at_max_tool_rounds() -> None:
    def ping() -> str:
        """Ping."""
        return "pong"

    replies = [Reply("", tool_calls=[ToolCallEvent(f"c{i}", "ping", {})]) for i in range(10)]
    llm = ScriptedLLM(replies)
    conv = Conversation()
    items = await collect(
        LLMResponder(llm, tools=[Tool.from_callable(ping)], max_tool_rounds=2), UserInput("go"), conv
    )
    assert items == []
    assert len(llm.calls) == 3  # the first answer and two more rounds
    assert [m.role for m in conv.messages] == ["user", *["assistant", "tool"] * 3]
    assert llm.active == 0


# --- failures and cancellation ---------------------------------------------------------------


class FlowLike:
    name = "fallback"

    def greeting(self) -> str | None:
        return None

    async def respond(self, turn: UserInput, conversation: Conversation) -> AsyncIterator[ResponseItem]:
        conversation.add_user(turn.as_message_text())
        yield "The fallback answers."
        conversation.add_assistant("The fallback answers.")


async def test_llm_failing_before_any_text_hands_the_turn_to_the_fallback() -> None:
    llm = ScriptedLLM(["unused"], broken=True)
    conv = Conversation("sys")
    items = await collect(LLMResponder(llm, fallback=FlowLike()), UserInput("hello"), conv)
    assert items == ["The fallback answers."]
    # The failed attempt leaves nothing behind: one user message, the fallback's answer.
    assert conv.messages == [
        ChatMessage.system("sys"),
        ChatMessage.user("hello"),
        ChatMessage.assistant("The fallback answers."),
    ]


async def test_llm_failing_without_a_fallback_raises() -> None:
    with pytest.raises(ProviderError):
        await collect(LLMResponder(ScriptedLLM(broken=True)), UserInput("hello"), Conversation())


class Partial:
    name = "partial"

    async def chat(self, messages: list[ChatMessage], tools: Sequence[Any] = ()) -> AsyncIterator[LLMEvent]:
        yield TextDelta("Sure, one ")
        raise ProviderError(self.name, "stream cut", retryable=False)
        yield LLMDone()  # pragma: no cover


async def test_llm_failing_after_some_text_is_not_replayed_by_the_fallback() -> None:
    conv = Conversation()
    items: list[ResponseItem] = []
    with pytest.raises(ProviderError):
        async with aclosing(
            LLMResponder(Partial(), fallback=FlowLike()).respond(UserInput("hi"), conv)
        ) as gen:
            async for item in gen:
                items.append(item)
    assert items == ["Sure, one "]
    assert conv.messages == [ChatMessage.user("hi"), ChatMessage.assistant("Sure, one ")]


async def test_closing_the_reply_mid_stream_keeps_what_was_produced_and_closes_the_llm() -> None:
    llm = ScriptedLLM(["One two three four five six."], stall_after=3)
    conv = Conversation()
    gen = LLMResponder(llm).respond(UserInput("count"), conv)
    got = [await gen.__anext__() for _ in range(3)]
    assert llm.active == 1
    await gen.aclose()  # what the runner does on barge-in
    assert llm.active == 0
    assert conv.messages == [ChatMessage.user("count"), ChatMessage.assistant("".join(got))]
    assert "".join(got) == "One two three"


def assert_every_tool_call_answered(messages: Sequence[ChatMessage]) -> None:
    """What OpenAI-style APIs require: each tool call is followed by a tool message for its id."""
    for i, message in enumerate(messages):
        if message.role == "assistant" and message.tool_calls:
            results = [
                m.tool_call_id for m in messages[i + 1 : i + 1 + len(message.tool_calls)] if m.role == "tool"
            ]
            assert sorted(results) == sorted(c.id for c in message.tool_calls), messages


async def test_a_reply_cut_off_while_a_tool_runs_still_answers_every_tool_call() -> None:
    started = asyncio.Event()

    async def book(day: str) -> str:
        """Book a visit."""
        started.set()
        await asyncio.sleep(30)
        return "booked"

    llm = ScriptedLLM(
        [
            Reply(
                "Booking that now.",
                tool_calls=[
                    ToolCallEvent("b1", "book", {"day": "monday"}),
                    ToolCallEvent("b2", "book", {"day": "tue"}),
                ],
            ),
            "Sorry about that, which day?",
        ]
    )
    conv = Conversation()
    responder = LLMResponder(llm, tools=[Tool.from_callable(book)])
    task = asyncio.create_task(collect(responder, UserInput("book monday"), conv))
    await asyncio.wait_for(started.wait(), 2)
    task.cancel()  # what a barge-in does to the reply
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_every_tool_call_answered(conv.messages)
    assert [m.tool_call_id for m in conv.messages if m.role == "tool"] == ["b1", "b2"]
    assert all(m.content.startswith("error:") for m in conv.messages if m.role == "tool")
    # So the next turn's request is well formed.
    await collect(responder, UserInput("no wait"), conv)
    assert_every_tool_call_answered(llm.calls[1])


async def test_tool_calls_with_an_end_call_marker_are_answered_too() -> None:
    llm = ScriptedLLM([Reply("Bye. [END_CALL]", tool_calls=[ToolCallEvent("n1", "note", {"text": "bye"})])])

    def note(text: str) -> None:
        """Take a note."""

    conv = Conversation()
    items = await collect(LLMResponder(llm, tools=[Tool.from_callable(note)]), UserInput("bye"), conv)
    assert items[-1] == EndCall("agent ended the call")
    assert_every_tool_call_answered(conv.messages)


class ToolThenFail:
    name = "tool-then-fail"

    async def chat(self, messages: list[ChatMessage], tools: Sequence[Any] = ()) -> AsyncIterator[LLMEvent]:
        yield TextDelta("Checking. ")
        yield ToolCallEvent("x1", "end_call", {})
        raise ProviderError(self.name, "stream cut", retryable=False)


async def test_tool_calls_of_a_failed_stream_are_not_left_unanswered() -> None:
    conv = Conversation()
    with pytest.raises(ProviderError):
        await collect(LLMResponder(ToolThenFail()), UserInput("hi"), conv)
    assert_every_tool_call_answered(conv.messages)
    assert conv.messages[1].content == "Checking. "


async def test_closing_the_reply_at_its_last_words_leaves_no_unanswered_tool_call() -> None:
    # A trailing "[" is held by the marker filter and comes out last, after the tool call arrived.
    llm = ScriptedLLM([Reply("One moment [", tool_calls=[ToolCallEvent("c1", "end_call", {})])])
    conv = Conversation()
    gen = LLMResponder(llm).respond(UserInput("hi"), conv)
    items = [await gen.__anext__() for _ in range(4)]
    assert items == ["One", " moment", " ", "["]  # the held bracket, flushed at the end of the stream
    await gen.aclose()
    assert_every_tool_call_answered(conv.messages)


async def test_transfer_targets_from_the_agent_config_bound_the_transfer_tool() -> None:
    from voxgate.agent.config import AgentConfig, ProviderConfig
    from voxgate.agent.pipeline import PipelineAgent
    from voxgate.testing.harness import SimulatedCall

    config = AgentConfig(
        stt=[ProviderConfig(name="scripted")],
        llm=[ProviderConfig(name="scripted")],
        tts=[ProviderConfig(name="scripted")],
        vad=ProviderConfig(name="scripted"),
        transfer_targets=["operator", "sales"],
    )
    responder = PipelineAgent(config).responder(SimulatedCall())
    assert isinstance(responder, LLMResponder)
    [spec] = [s for s in responder.specs if s.name == "transfer_call"]
    assert spec.parameters["properties"]["target"]["enum"] == ["operator", "sales"]
    result, action = await responder._run_tool(ToolCallEvent("c1", "transfer_call", {"target": "900"}))
    assert action is None and result.startswith("error")
    result, action = await responder._run_tool(ToolCallEvent("c2", "transfer_call", {"target": "sales"}))
    assert action == Transfer("sales")
