"""The /channels endpoints of AriClient (see rest.py)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import AriNotFound
from .http import AriHttp, media_list, seg
from .models import Channel, LiveRecording, Playback

Variables = Mapping[str, Any]


def app_args_param(app_args: str | Sequence[str] | None) -> str | None:
    return app_args if app_args is None or isinstance(app_args, str) else ",".join(app_args)


def variables_body(variables: Variables | None) -> dict[str, Any] | None:
    return {"variables": dict(variables)} if variables else None


class ChannelsApi(AriHttp):
    """Call legs: originate, answer, play, record, DTMF, hold, variables, snoop, externalMedia."""

    async def list_channels(self) -> list[Channel]:
        return [Channel.from_json(c) for c in await self.request("GET", "/channels")]

    async def originate(
        self,
        endpoint: str,
        *,
        extension: str | None = None,
        context: str | None = None,
        priority: int | None = None,
        label: str | None = None,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        caller_id: str | None = None,
        ring_timeout: int | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Variables | None = None,
    ) -> Channel:
        """Dial `endpoint` (e.g. "PJSIP/+15551230000@trunk") into dialplan or a Stasis app.

        `ring_timeout` is ARI's `timeout`: seconds to ring (Asterisk default 30, -1 = forever).
        """
        if app is not None and (extension is not None or context is not None):
            raise ValueError("originate takes either app/app_args or extension/context/priority, not both")
        params = {
            "endpoint": endpoint,
            "extension": extension,
            "context": context,
            "priority": priority,
            "label": label,
            "app": app,
            "appArgs": app_args_param(app_args),
            "callerId": caller_id,
            "timeout": ring_timeout,
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": formats,
        }
        return Channel.from_json(await self.request("POST", "/channels", params, variables_body(variables)))

    async def create_channel(
        self,
        endpoint: str,
        *,
        app: str | None = None,
        app_args: str | Sequence[str] | None = None,
        channel_id: str | None = None,
        other_channel_id: str | None = None,
        originator: str | None = None,
        formats: str | Sequence[str] | None = None,
        variables: Variables | None = None,
    ) -> Channel:
        """Create a channel without dialing it (then `dial`); `app` defaults to ours."""
        params = {
            "endpoint": endpoint,
            "app": app or self.app,
            "appArgs": app_args_param(app_args),
            "channelId": channel_id,
            "otherChannelId": other_channel_id,
            "originator": originator,
            "formats": formats,
        }
        body = await self.request("POST", "/channels/create", params, variables_body(variables))
        return Channel.from_json(body)

    async def dial(
        self, channel_id: str, *, caller: str | None = None, ring_timeout: int | None = None
    ) -> None:
        """Dial a channel made by `create_channel`; `ring_timeout` is ARI's `timeout` (s)."""
        params = {"caller": caller, "timeout": ring_timeout}
        await self.request("POST", f"/channels/{seg(channel_id)}/dial", params)

    async def get_channel(self, channel_id: str) -> Channel:
        return Channel.from_json(await self.request("GET", f"/channels/{seg(channel_id)}"))

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{seg(channel_id)}/answer")

    async def hangup(
        self,
        channel_id: str,
        reason: str | None = None,
        *,
        reason_code: int | None = None,
        missing_ok: bool = False,
    ) -> None:
        """Hang up; `reason` is normal, busy, congestion, no_answer … or a numeric `reason_code`.
        With `missing_ok`, a channel that is already gone (404) is not an error (call cleanup)."""
        if reason is not None and reason_code is not None:
            raise ValueError("hangup takes reason or reason_code, not both (ARI treats them as exclusive)")
        params = {"reason": reason, "reason_code": reason_code}
        try:
            await self.request("DELETE", f"/channels/{seg(channel_id)}", params)
        except AriNotFound:
            if not missing_ok:
                raise

    async def ring(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{seg(channel_id)}/ring")

    async def ring_stop(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{seg(channel_id)}/ring")

    async def play(
        self,
        channel_id: str,
        media: str | Sequence[str],
        *,
        lang: str | None = None,
        offsetms: int | None = None,
        skipms: int | None = None,
        playback_id: str | None = None,
    ) -> Playback:
        """Play media URIs (`sound:hello-world`, `recording:x`, `digits:123`, `tone:ring` …)."""
        params = {
            "media": media_list(media),
            "lang": lang,
            "offsetms": offsetms,
            "skipms": skipms,
            "playbackId": playback_id,
        }
        return Playback.from_json(await self.request("POST", f"/channels/{seg(channel_id)}/play", params))

    async def record(
        self,
        channel_id: str,
        name: str,
        format: str = "wav",
        *,
        max_duration_seconds: int | None = None,
        max_silence_seconds: int | None = None,
        if_exists: str | None = None,
        beep: bool | None = None,
        terminate_on: str | None = None,
    ) -> LiveRecording:
        params = {
            "name": name,
            "format": format,
            "maxDurationSeconds": max_duration_seconds,
            "maxSilenceSeconds": max_silence_seconds,
            "ifExists": if_exists,
            "beep": beep,
            "terminateOn": terminate_on,
        }
        body = await self.request("POST", f"/channels/{seg(channel_id)}/record", params)
        return LiveRecording.from_json(body)

    async def send_dtmf(
        self,
        channel_id: str,
        dtmf: str,
        *,
        before: int | None = None,
        between: int | None = None,
        duration: int | None = None,
        after: int | None = None,
    ) -> None:
        params = {"dtmf": dtmf, "before": before, "between": between, "duration": duration, "after": after}
        await self.request("POST", f"/channels/{seg(channel_id)}/dtmf", params)

    async def hold(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{seg(channel_id)}/hold")

    async def unhold(self, channel_id: str) -> None:
        await self.request("DELETE", f"/channels/{seg(channel_id)}/hold")

    async def mute(self, channel_id: str, direction: str | None = None) -> None:
        """Mute audio `direction` = both (default), in or out."""
        await self.request("POST", f"/channels/{seg(channel_id)}/mute", {"direction": direction})

    async def unmute(self, channel_id: str, direction: str | None = None) -> None:
        await self.request("DELETE", f"/channels/{seg(channel_id)}/mute", {"direction": direction})

    async def redirect(self, channel_id: str, endpoint: str) -> None:
        await self.request("POST", f"/channels/{seg(channel_id)}/redirect", {"endpoint": endpoint})

    async def continue_in_dialplan(
        self,
        channel_id: str,
        *,
        context: str | None = None,
        extension: str | None = None,
        priority: int | None = None,
        label: str | None = None,
    ) -> None:
        """Leave Stasis back to the dialplan (a StasisEnd follows)."""
        params = {"context": context, "extension": extension, "priority": priority, "label": label}
        await self.request("POST", f"/channels/{seg(channel_id)}/continue", params)

    async def move(self, channel_id: str, app: str, app_args: str | Sequence[str] | None = None) -> None:
        params = {"app": app, "appArgs": app_args_param(app_args)}
        await self.request("POST", f"/channels/{seg(channel_id)}/move", params)

    async def get_channel_var(self, channel_id: str, variable: str) -> str:
        """A channel variable or function (`CALLERID(num)`, `PJSIP_HEADER(read,X-Foo)`)."""
        body = await self.request("GET", f"/channels/{seg(channel_id)}/variable", {"variable": variable})
        return str(body.get("value", "")) if isinstance(body, dict) else ""

    async def set_channel_var(
        self, channel_id: str, variable: str, value: str, *, report_events: bool | None = None
    ) -> None:
        """`report_events` needs Asterisk 20.20 / 22.10 / 23.4+."""
        params = {"variable": variable, "value": value, "report_events": report_events}
        await self.request("POST", f"/channels/{seg(channel_id)}/variable", params)

    async def snoop(
        self,
        channel_id: str,
        *,
        app: str | None = None,
        spy: str | None = None,
        whisper: str | None = None,
        app_args: str | Sequence[str] | None = None,
        snoop_id: str | None = None,
    ) -> Channel:
        """A snoop channel on `channel_id` (spy/whisper = none, both, out, in) put into `app`."""
        params = {
            "app": app or self.app,
            "spy": spy,
            "whisper": whisper,
            "appArgs": app_args_param(app_args),
            "snoopId": snoop_id,
        }
        return Channel.from_json(await self.request("POST", f"/channels/{seg(channel_id)}/snoop", params))

    async def external_media(
        self,
        format: str,
        *,
        app: str | None = None,
        external_host: str | None = None,
        encapsulation: str | None = None,
        transport: str | None = None,
        connection_type: str | None = None,
        direction: str | None = None,
        data: str | None = None,
        transport_data: str | None = None,
        channel_id: str | None = None,
        variables: Variables | None = None,
    ) -> Channel:
        """A media channel to our AudioSocket/RTP/WebSocket endpoint, put into `app` (default ours).

        Asterisk accepts rtp+udp, audiosocket+tcp (with `data`: it becomes the call UUID) and
        none+websocket; anything else answers 501 (AriNotImplemented).
        """
        if encapsulation == "audiosocket" and not data:
            raise ValueError("externalMedia with encapsulation=audiosocket needs data=<call uuid>")
        params = {
            "app": app or self.app,
            "external_host": external_host,
            "encapsulation": encapsulation,
            "transport": transport,
            "connection_type": connection_type,
            "format": format,
            "direction": direction,
            "data": data,
            "transport_data": transport_data,
            "channelId": channel_id,
        }
        body = await self.request("POST", "/channels/externalMedia", params, variables_body(variables))
        return Channel.from_json(body)
