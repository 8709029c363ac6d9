"""Typed ARI events (ari.md §2, §7). `parse.parse_event` turns a WebSocket frame into one.

Every event keeps its JSON in `raw`; `UnknownEvent` and `MalformedEvent` carry what we could
not model or read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .models import Bridge, Channel, LiveRecording, Playback, parse_timestamp


@dataclass(frozen=True, kw_only=True, slots=True)
class AriEvent:
    type: str
    application: str = ""
    timestamp: str = ""
    asterisk_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def time(self) -> datetime | None:
        return parse_timestamp(self.timestamp)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelEvent(AriEvent):
    """Any event about one channel; `channel.id` is the call leg."""

    channel: Channel


@dataclass(frozen=True, kw_only=True, slots=True)
class StasisStart(ChannelEvent):
    """A channel entered our app: `args` from `Stasis(app,a,b)` or originate `appArgs`."""

    args: tuple[str, ...] = ()
    replace_channel: Channel | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StasisEnd(ChannelEvent):
    """The channel left the app (hangup, continue, move): REST calls on it now fail."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelCreated(ChannelEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelStateChange(ChannelEvent):
    """`channel.state` is the new state (e.g. Up after answer)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelDtmfReceived(ChannelEvent):
    digit: str
    duration_ms: int = 0


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelHangupRequest(ChannelEvent):
    cause: int | None = None
    tech_cause: int | None = None
    soft: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelDestroyed(ChannelEvent):
    cause: int
    cause_txt: str = ""
    tech_cause: int | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelVarset(AriEvent):
    """`channel` is None for a global variable."""

    variable: str
    value: str = ""
    channel: Channel | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelTalkingStarted(ChannelEvent):
    """Needs TALK_DETECT(set)= on the channel."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelTalkingFinished(ChannelEvent):
    duration: int = 0  # ms of talking


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelHold(ChannelEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelUnhold(ChannelEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class BridgeEvent(AriEvent):
    bridge: Bridge


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelEnteredBridge(BridgeEvent):
    channel: Channel


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelLeftBridge(BridgeEvent):
    channel: Channel


@dataclass(frozen=True, kw_only=True, slots=True)
class BridgeCreated(BridgeEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class BridgeDestroyed(BridgeEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackEvent(AriEvent):
    playback: Playback


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackStarted(PlaybackEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackContinuing(PlaybackEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class PlaybackFinished(PlaybackEvent):
    """`playback.state` is done, or failed when the media was not found."""


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingEvent(AriEvent):
    recording: LiveRecording


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingStarted(RecordingEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingFinished(RecordingEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordingFailed(RecordingEvent):
    pass


@dataclass(frozen=True, kw_only=True, slots=True)
class Dial(AriEvent):
    """Progress of a dial: `dialstatus` is empty while ringing, then ANSWER, BUSY, NOANSWER …"""

    peer: Channel
    caller: Channel | None = None
    dialstatus: str = ""
    dialstring: str = ""
    forward: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelUserevent(AriEvent):
    eventname: str
    userevent: dict[str, Any] = field(default_factory=dict)
    channel: Channel | None = None
    bridge: Bridge | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplicationReplaced(AriEvent):
    """Another connection took over our app: this socket gets no more events."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ApplicationRegistered(AriEvent):
    """Sent on connect by Asterisk 20.15 / 21.10 / 22.5 / 23.0+."""


@dataclass(frozen=True, kw_only=True, slots=True)
class UnknownEvent(AriEvent):
    """A well-formed event of a type we do not model."""


@dataclass(frozen=True, kw_only=True, slots=True)
class MalformedEvent(AriEvent):
    """A frame we could not read as the event it claims to be; `reason` says why."""

    reason: str
    text: str = ""  # the frame as received, when it was not a JSON object
