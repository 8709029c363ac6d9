"""The HTTP layer under AriClient: one aiohttp session, auth, typed errors, GET retries on 5xx."""

from __future__ import annotations

import asyncio
import base64
import json as jsonlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

from .errors import AriConnectionError, AriError, error_for_status

log = logging.getLogger("voxgate.telephony.ari")

Params = Mapping[str, Any]


def seg(value: object) -> str:
    """One path segment, percent-encoded (ids and recording names may hold '/', ';' …)."""
    return quote(str(value), safe="")


def query_value(value: object) -> str:
    """ARI query values: booleans as true/false, lists comma-separated (the notes' multi-value form)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(query_value(v) for v in value)
    return str(value)


def clean_params(params: Params | None) -> dict[str, str]:
    """Drop None (= 'use Asterisk's default') and stringify the rest for the query string."""
    return {k: query_value(v) for k, v in (params or {}).items() if v is not None}


class AriHttp:
    """Owns the aiohttp session. Every ARI call funnels through `request`."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        app: str,
        *,
        timeout: float = 10.0,
        auth: Literal["basic", "api_key"] = "basic",
        get_retries: int = 2,
        retry_backoff: float = 0.1,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        if not base.endswith("/ari"):
            base += "/ari"  # ARI lives under the /ari prefix of Asterisk's HTTP server
        self.base_url = base
        self.app = app
        self.username = username
        self.auth_mode = auth
        self.timeout = timeout
        self.get_retries = get_retries
        self.retry_backoff = retry_backoff
        self._password = password
        self._session = session
        self._own_session = session is None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._own_session = True
        return self._session

    def auth_kwargs(self) -> tuple[dict[str, str], dict[str, str]]:
        """(headers, extra query params) for the configured auth mode (ari.md §1)."""
        if self.auth_mode == "api_key":
            return {}, {"api_key": f"{self.username}:{self._password}"}
        token = base64.b64encode(f"{self.username}:{self._password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}, {}

    async def close(self) -> None:
        if self._session is not None and self._own_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> AriHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(
        self,
        method: str,
        path: str,
        params: Params | None = None,
        json: Any = None,
    ) -> Any:
        """The raw escape hatch: `path` is relative to /ari (e.g. "/channels"). Returns parsed JSON,
        or None for 204. Non-2xx raises a typed AriError; GETs are retried on 5xx (not 501)."""
        method = method.upper()
        if not path.startswith("/"):
            path = "/" + path
        attempts = 1 + (self.get_retries if method == "GET" else 0)
        for attempt in range(attempts):
            try:
                return await self._once(method, path, params, json)
            except AriError as exc:
                if not exc.retryable or attempt + 1 >= attempts:
                    raise
                delay = self.retry_backoff * (2**attempt)
                log.warning(
                    "ARI %s %s: %s; retry %d/%d in %.2f s",
                    method,
                    path,
                    exc,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _once(self, method: str, path: str, params: Params | None, body: Any) -> Any:
        headers, extra = self.auth_kwargs()
        query = {**clean_params(params), **extra}
        try:
            async with self.session.request(
                method, self.base_url + path, params=query, json=body, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AriConnectionError(None, method, path, f"{type(exc).__name__}: {exc}") from exc
        if status >= 400:
            raise error_for_status(status, method, path, _message_of(text))
        if status == 204 or not text:
            return None
        try:
            return jsonlib.loads(text)
        except ValueError as exc:
            raise AriError(status, method, path, f"response is not JSON: {text[:200]!r}") from exc


def _message_of(text: str) -> str:
    """ARI error bodies are {"message": "..."}; fall back to the raw text."""
    try:
        body = jsonlib.loads(text)
    except ValueError:
        return text.strip()[:200]
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return text.strip()[:200]


def media_list(media: str | Sequence[str]) -> str:
    """One media URI or several, as ARI's comma-separated `media` parameter."""
    return media if isinstance(media, str) else ",".join(media)
