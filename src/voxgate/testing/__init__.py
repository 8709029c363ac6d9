"""Test harness shipped with the package, so users can test their own agents too."""

from voxgate.testing.caller import CallerResult, CallerScript, VirtualCaller, place_call
from voxgate.testing.fakes import Reply, ScriptedLLM, ScriptedSTT, ScriptedTTS, ScriptedVAD

__all__ = [
    "CallerResult",
    "CallerScript",
    "Reply",
    "ScriptedLLM",
    "ScriptedSTT",
    "ScriptedTTS",
    "ScriptedVAD",
    "VirtualCaller",
    "place_call",
]
