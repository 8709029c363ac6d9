"""What the ARI benchmarks (ari_calls.py, ari_originate.py) share: the fake ARI server
(tests/fake_ari.py --connect-audiosocket) as its own process, voxgate on it in this process
(echo agent, AudioSocket media), the JSON calls to the fake's control API and to voxgate's HTTP
API, and the command-line plumbing (uvloop, logging, the report).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp

from stats import summary
from voxgate.config import load_config
from voxgate.server.app import VoxgateServer

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def pct(values: list[float]) -> dict[str, float | None]:
    return summary(values, ("n", "p50", "p99", "max"))


async def start_fake() -> tuple[asyncio.subprocess.Process, int]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "tests" / "fake_ari.py"),
        "--port",
        "0",
        "--connect-audiosocket",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = await proc.stdout.readline()
    return proc, int(line)


def make_server(url: str, **extra: object) -> VoxgateServer:
    """voxgate as `voxgate serve` runs it with `agent: echo` and `ari.media: audiosocket`."""
    overrides: dict[str, object] = {
        "agent": "echo",
        "audiosocket.listen": f"{HOST}:0",
        "http.listen": f"{HOST}:0",
        "ari.url": url,
        "ari.username": "voxgate",
        "ari.password": "secret",
        "ari.app": "voxgate",
        "ari.media": "audiosocket",
        "ari.media_host": HOST,
    }
    return VoxgateServer(load_config(overrides={**overrides, **extra}))


@contextlib.asynccontextmanager
async def voxgate_on_fake_ari(**extra: object) -> AsyncIterator[tuple[VoxgateServer, str]]:
    """The fake ARI process and voxgate (`make_server(**extra)`) started and its events socket
    connected; yields (server, the fake's base URL). Both are stopped on the way out."""
    proc, port = await start_fake()
    base = f"http://{HOST}:{port}"
    server = make_server(base, **extra)
    try:
        await server.start()
        assert server.ari_events is not None
        await server.ari_events.wait_connected(5.0)
        yield server, base
    finally:
        await server.stop()
        proc.terminate()
        await proc.wait()


class Http:
    """JSON over HTTP on one base URL: the fake's control API (`/_fake/...`) or voxgate's."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http, self.base = http, base

    async def get(self, path: str, **params: str) -> Any:
        return await self._ok("GET", path, params)

    async def post(self, path: str, **params: str) -> Any:
        """POST with query parameters; the JSON answer (an error status raises)."""
        return await self._ok("POST", path, params)

    async def post_json(self, path: str, body: Any) -> tuple[int, Any]:
        """POST a JSON body; (status, JSON answer), whatever the status."""
        async with self.http.post(f"{self.base}{path}", json=body) as resp:
            return resp.status, await resp.json()

    async def calls(self) -> dict[str, Any]:
        return await self.get("/_fake/calls")

    async def _ok(self, method: str, path: str, params: dict[str, str]) -> Any:
        async with self.http.request(method, f"{self.base}{path}", params=params) as resp:
            resp.raise_for_status()
            return await resp.json()


async def poll(check: Callable[[], Awaitable[bool]], within: float, every: float = 0.05) -> bool:
    """Until `await check()` is true (→ True) or `within` s have passed (→ False)."""
    deadline = time.monotonic() + within
    while True:
        if await check():
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(every)


class Sampler:
    """A sampling loop (`_run`) in a task between `start()` and `await stop()`."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        raise NotImplementedError


def print_rows(rows: list[tuple[str, str]]) -> None:
    """The report: labels in a column as wide as the longest."""
    width = max(len(a) for a, _ in rows)
    for a, b in rows:
        print(f"{a:<{width}}  {b}".rstrip())


class Parser(argparse.ArgumentParser):
    """A benchmark's command line, its docstring as the help. `parse()`: the benchmark's own
    options, then those every ARI benchmark has (--no-uvloop, --json, --verbose)."""

    def __init__(self, doc: str | None) -> None:
        super().__init__(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)

    def parse(self) -> argparse.Namespace:
        self.add_argument("--no-uvloop", action="store_true", help="run voxgate on the asyncio loop")
        self.add_argument("--json", type=Path)
        self.add_argument("--verbose", action="store_true", help="show voxgate's logs")
        return self.parse_args()


Results = dict[str, Any]


def run_main(
    run: Callable[[argparse.Namespace, str], Coroutine[Any, Any, Results]],
    report: Callable[[Results], None],
    opts: argparse.Namespace,
) -> None:
    """`run(opts, loop name)` on uvloop (what `voxgate serve` runs on when it is installed)
    unless --no-uvloop, with voxgate's logs at INFO under --verbose, else errors only; then
    `report(results)`, and the results as JSON to --json."""
    logging.basicConfig(level=logging.INFO if opts.verbose else logging.ERROR, format="%(message)s")
    loop_run, loop_name = asyncio.run, "asyncio"
    if not opts.no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:  # what `voxgate serve` runs on when uvloop is installed
            loop_run, loop_name = uvloop.run, "uvloop"
    results = loop_run(run(opts, loop_name))
    report(results)
    if opts.json:
        opts.json.write_text(json.dumps(results, indent=2) + "\n")
