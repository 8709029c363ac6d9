"""Speech-to-speech sessions (OpenAI Realtime, Deepgram Voice Agent) behind one small seam."""

from voxgate.providers.realtime.base import (
    AgentAudio,
    AgentAudioDone,
    RealtimeConfig,
    RealtimeEvent,
    RealtimeProvider,
    RealtimeSession,
    ResponseDone,
    SessionError,
    ToolCall,
    Transcript,
    UserSpeechStarted,
    UserSpeechStopped,
)

__all__ = [
    "AgentAudio",
    "AgentAudioDone",
    "RealtimeConfig",
    "RealtimeEvent",
    "RealtimeProvider",
    "RealtimeSession",
    "ResponseDone",
    "SessionError",
    "ToolCall",
    "Transcript",
    "UserSpeechStarted",
    "UserSpeechStopped",
]
