"""Plumbing shared by the cloud providers' clients (LLM, STT, TTS over HTTP and WebSocket).

- `HTTPClient`: the base of a client. Its `aiohttp.ClientSession` is made on first use and
  belongs to the running event loop (a session cannot cross loops: a new loop gets a new pool);
  `aclose()` or `async with` closes it. `repr()` names `_repr_fields` and shows the key as `***`.
  `_post()` sends one JSON request and hands over its response to be read as a stream.
- `status_error()`: a refused request (an HTTP error status, a refused WebSocket upgrade) as a
  `ProviderError` carrying the server's own message with every key scrubbed out
  (`voxgate.providers.secrets.redact`), retryable for 5xx and 408/409/429.
- `error_body()`: what the body of an error response says, JSON or not.

What each API does differently (its URL, headers, body, the shape of its errors) stays in its
client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Self

import aiohttp

from voxgate.providers.base import ProviderError, ProviderTimeout
from voxgate.providers.secrets import Secret, redact

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""HTTP statuses worth another try (as the OpenAI SDK does), besides every 5xx."""

MAX_ERROR_BODY = 64 * 1024
"""How much of an error response is read for its message."""

dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
"""Compact JSON text, non-ASCII left as is (request bodies, WebSocket messages)."""


def status_line(response: aiohttp.ClientResponse) -> str:
    """`HTTP 503 Service Unavailable` (with the reason phrase when the server sent one)."""
    return f"HTTP {response.status} {response.reason or ''}".rstrip()


async def error_body(response: aiohttp.ClientResponse) -> tuple[Any, str]:
    """(the body parsed as JSON, "") or, when it is not JSON, (None, its first 300 characters).
    At most `MAX_ERROR_BODY` bytes are read; a body that cannot be read counts as empty."""
    try:
        body = await response.content.read(MAX_ERROR_BODY)
    except (aiohttp.ClientError, OSError):
        body = b""
    try:
        return json.loads(body), ""
    except ValueError:
        return None, body[:300].decode("utf-8", "replace").strip()


def status_error(
    provider: str,
    status: int,
    head: str,
    message: str | None = None,
    *,
    secret: Secret | None,
    kind: str = "",
    retry_after: str | None = None,
    key_hint: str = "",
    tail: str = "",
    retryable: Collection[int] = RETRYABLE_STATUS,
) -> ProviderError:
    """A refused request: `head`, then `: message` (the server's own words, keys scrubbed out),
    ` (kind)`, `; retry after N s` (a 429's Retry-After), `key_hint` on a 401 or 403, and `tail`.
    Retryable for every 5xx and for the statuses in `retryable`."""
    text = head
    if message:
        text += f": {redact(message, secret)}"
    if kind:
        text += f" ({kind})"
    if status == 429 and retry_after:
        text += f"; retry after {retry_after} s"
    if status in (401, 403):
        text += key_hint
    return ProviderError(provider, text + tail, retryable=status >= 500 or status in retryable)


class HTTPClient:
    """The base of a cloud client: its pooled session, `aclose()`, `async with`, a `repr()` that
    hides the key, `_redact()`, and `_post()` for the clients that send JSON over HTTP.

    `connect_timeout`, `read_timeout`: the session's socket backstops, in s (neither: aiohttp's
    default timeouts). `max_connections`: the size of a keep-alive pool of its own (None: aiohttp's
    default connector).
    """

    name: str
    url: str
    _repr_fields: ClassVar[tuple[str, ...]] = ("url",)

    def __init__(
        self,
        key: Secret | None,
        *,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        max_connections: int | None = None,
    ) -> None:
        self._key = key
        self._timeout: aiohttp.ClientTimeout | None = None
        if connect_timeout is not None or read_timeout is not None:
            self._timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=connect_timeout, sock_read=read_timeout
            )
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop `_session` belongs to

    def __repr__(self) -> str:
        shown = [f"{field}={getattr(self, field)!r}" for field in self._repr_fields]
        if self._key is not None:
            shown.append("api_key=***")
        return f"{type(self).__name__}({', '.join(shown)})"

    def _redact(self, value: object) -> str:
        """`value` (text, or an exception as `Type: message`) with every key scrubbed out."""
        text = value if isinstance(value, str) else f"{type(value).__name__}: {value}"
        return redact(text, self._key)

    # -- the session --

    def _session_now(self) -> aiohttp.ClientSession:
        session = self._session
        loop = asyncio.get_running_loop()
        if session is None or session.closed or self._loop is not loop:
            self._loop = loop  # a session belongs to one event loop; a new loop gets a new pool
            options: dict[str, Any] = {}
            if self._timeout is not None:
                options["timeout"] = self._timeout
            if self._max_connections is not None:
                options["connector"] = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            session = self._session = aiohttp.ClientSession(**options)
        return session

    async def aclose(self) -> None:
        """Close the connection pool (the next request opens a new one)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- JSON over HTTP --

    @asynccontextmanager
    async def _post(
        self, url: str, data: bytes, headers: dict[str, str]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST `data` and hand over the response, its status checked (`_http_error`). A socket
        failure, connecting or reading, becomes `_network_error`. A response read to its end gives
        its connection back to the pool; one left early (barge-in) or failed is closed, which is
        how the server learns to stop generating."""
        try:
            response = await self._session_now().post(url, data=data, headers=headers)
        except (aiohttp.ClientError, OSError) as exc:
            raise self._network_error(exc, "connecting to") from None
        clean = False
        try:
            if response.status >= 400:
                raise await self._http_error(response)
            yield response
            clean = response.content.at_eof()
        except (aiohttp.ClientError, OSError) as exc:
            raise self._network_error(exc, "reading the stream from") from None
        finally:
            if clean:
                response.release()
            else:
                response.close()

    async def _json(self, response: aiohttp.ClientResponse) -> Any:
        """The whole body as JSON (a server that answered a streamed request in one piece)."""
        body = await response.content.read()
        try:
            return json.loads(body)
        except ValueError:
            raise ProviderError(self.name, f"a non-JSON body: {body[:200]!r}") from None

    async def _http_error(self, response: aiohttp.ClientResponse) -> ProviderError:
        """The error for a response with an error status; each API words its errors its own way."""
        raise NotImplementedError

    def _network_error(self, exc: BaseException, doing: str, url: str | None = None) -> ProviderError:
        detail = self._redact(exc)
        if isinstance(exc, TimeoutError):
            return ProviderTimeout(self.name, f"socket timeout while {doing} ({detail})")
        return ProviderError(self.name, f"{doing} {url or self.url} failed: {detail}", retryable=True)
