"""Test harness shipped with the package, so users can test their own agents too."""

from voxgate.testing.caller import CallerResult, CallerScript, VirtualCaller, place_call

__all__ = ["CallerResult", "CallerScript", "VirtualCaller", "place_call"]
