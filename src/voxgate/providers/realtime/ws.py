"""What the realtime sessions' WebSockets share."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp


async def close_socket(
    ws: aiohttp.ClientWebSocketResponse | None, http: aiohttp.ClientSession | None, timeout_s: float
) -> None:
    """Close a session's WebSocket (within `timeout_s`: a peer gone quiet must not hold the call)
    and its HTTP session; never raises."""
    if ws is not None and not ws.closed:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(timeout_s):
                await ws.close()
    if http is not None and not http.closed:
        with contextlib.suppress(Exception):
            await http.close()
