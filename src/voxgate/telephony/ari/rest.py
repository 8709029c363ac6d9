"""AriClient: the ARI REST endpoints a voice agent needs, typed and named in the caller's world.

Parameters go in the query string; only `variables` goes in a JSON body (ari.md §1). Action
endpoints return None (204); objects come back as Channel/Bridge/Playback/LiveRecording or dicts.
`request(method, path, params, json)` reaches anything not wrapped here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .channels import ChannelsApi
from .errors import AriNotFound
from .http import media_list, seg
from .models import Bridge, LiveRecording, Playback


class AriClient(ChannelsApi):
    """`async with AriClient("http://127.0.0.1:8088", "user", "pass", "agent") as ari: ...`"""

    # -- bridges ----------------------------------------------------------------------------
    async def create_bridge(
        self, type: str | Sequence[str] = "mixing", *, bridge_id: str | None = None, name: str | None = None
    ) -> Bridge:
        """`type` is a comma list of mixing, holding, dtmf_events, proxy_media, video_sfu …"""
        params = {"type": type, "bridgeId": bridge_id, "name": name}
        return Bridge.from_json(await self.request("POST", "/bridges", params))

    async def list_bridges(self) -> list[Bridge]:
        return [Bridge.from_json(b) for b in await self.request("GET", "/bridges")]

    async def get_bridge(self, bridge_id: str) -> Bridge:
        return Bridge.from_json(await self.request("GET", f"/bridges/{seg(bridge_id)}"))

    async def destroy_bridge(self, bridge_id: str, *, missing_ok: bool = False) -> None:
        """Destroy; with `missing_ok`, an already-gone bridge (404) is not an error."""
        try:
            await self.request("DELETE", f"/bridges/{seg(bridge_id)}")
        except AriNotFound:
            if not missing_ok:
                raise

    async def add_channel(
        self,
        bridge_id: str,
        channel: str | Sequence[str],
        *,
        role: str | None = None,
        absorb_dtmf: bool | None = None,
        mute: bool | None = None,
        inhibit_connected_line_updates: bool | None = None,
    ) -> None:
        """Add one or more channels; they must be in our Stasis app (else 422)."""
        params = {
            "channel": channel,
            "role": role,
            "absorbDTMF": absorb_dtmf,
            "mute": mute,
            "inhibitConnectedLineUpdates": inhibit_connected_line_updates,
        }
        await self.request("POST", f"/bridges/{seg(bridge_id)}/addChannel", params)

    async def remove_channel(self, bridge_id: str, channel: str | Sequence[str]) -> None:
        await self.request("POST", f"/bridges/{seg(bridge_id)}/removeChannel", {"channel": channel})

    async def play_on_bridge(
        self,
        bridge_id: str,
        media: str | Sequence[str],
        *,
        announcer_format: str | None = None,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
        playback_id: str | None = None,
    ) -> Playback:
        params = {
            "media": media_list(media),
            "announcer_format": announcer_format,
            "lang": lang,
            "offsetms": offsetms,
            "skipms": skipms,
            "playbackId": playback_id,
        }
        return Playback.from_json(await self.request("POST", f"/bridges/{seg(bridge_id)}/play", params))

    # -- playbacks --------------------------------------------------------------------------
    async def get_playback(self, playback_id: str) -> Playback:
        return Playback.from_json(await self.request("GET", f"/playbacks/{seg(playback_id)}"))

    async def stop_playback(self, playback_id: str) -> None:
        """Stop; a PlaybackFinished event follows."""
        await self.request("DELETE", f"/playbacks/{seg(playback_id)}")

    async def control_playback(self, playback_id: str, operation: str) -> None:
        """`operation` = restart, pause, unpause, reverse or forward (409 if invalid right now)."""
        await self.request("POST", f"/playbacks/{seg(playback_id)}/control", {"operation": operation})

    # -- recordings -------------------------------------------------------------------------
    async def get_live_recording(self, name: str) -> LiveRecording:
        return LiveRecording.from_json(await self.request("GET", f"/recordings/live/{seg(name)}"))

    async def stop_live_recording(self, name: str) -> None:
        """Stop and keep the file (it becomes a stored recording)."""
        await self.request("POST", f"/recordings/live/{seg(name)}/stop")

    async def cancel_live_recording(self, name: str) -> None:
        """Stop and discard."""
        await self.request("DELETE", f"/recordings/live/{seg(name)}")

    async def list_stored_recordings(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/recordings/stored"))

    async def get_stored_recording(self, name: str) -> dict[str, Any]:
        """{name, format}."""
        return dict(await self.request("GET", f"/recordings/stored/{seg(name)}"))

    async def delete_stored_recording(self, name: str) -> None:
        await self.request("DELETE", f"/recordings/stored/{seg(name)}")

    # -- sounds, asterisk -------------------------------------------------------------------
    async def list_sounds(
        self, *, lang: str | None = None, format: str | None = None
    ) -> list[dict[str, Any]]:
        """[{id, text?, formats: [{language, format}]}]."""
        return list(await self.request("GET", "/sounds", {"lang": lang, "format": format}))

    async def get_sound(self, sound_id: str) -> dict[str, Any]:
        return dict(await self.request("GET", f"/sounds/{seg(sound_id)}"))

    async def list_modules(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/asterisk/modules"))

    async def get_module(self, name: str) -> dict[str, Any]:
        """404 (AriNotFound) when the module is not loaded."""
        return dict(await self.request("GET", f"/asterisk/modules/{seg(name)}"))

    async def asterisk_info(self, only: str | Sequence[str] | None = None) -> dict[str, Any]:
        return dict(await self.request("GET", "/asterisk/info", {"only": only}))

    async def ping(self) -> dict[str, Any]:
        return dict(await self.request("GET", "/asterisk/ping"))
