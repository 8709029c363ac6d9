"""Cost of our streaming-LLM client per token: SSE decoding + chunk parsing, in µs per token.

Three figures, each the median of `--repeats` runs of a `--tokens`-token reply:
- parse only: `SSEDecoder.feed` + `json.loads` + `ChunkParser.chunk` over a prebuilt body cut
  into one event per read (the worst case: a token per TCP segment), no network;
- client over loopback: `OpenAICompatibleLLM.chat` against the fake OpenAI server running in a
  separate process; CPU time of the client process per token (so the server is not counted),
  and wall time per token;
- raw read over loopback: the same HTTP stream read with aiohttp and thrown away, CPU per token.
  Not a baseline to subtract: a reader that does nothing keeps up with the server and gets one
  small read per event, while the parsing client falls behind and gets fewer, larger reads.

    .venv/bin/python benchmarks/llm_stream.py [--tokens 2000] [--repeats 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import platform
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_openai import encode_events, text_reply
from voxgate.providers import ChatMessage, TextDelta
from voxgate.providers.llm import OpenAICompatibleLLM
from voxgate.providers.llm.openai_compat import ChunkParser
from voxgate.providers.llm.sse import SSEDecoder

WORDS = ["Your", " order", " A7", " shipped", " on", " Monday", ",", " and", " it", " arrives", " soon", "."]


def reply_events(tokens: int) -> list[object]:
    return text_reply([WORDS[i % len(WORDS)] for i in range(tokens)], usage=(50, tokens))


def parse_only(tokens: int) -> float:
    """s per token: decode + parse a body delivered one event per read."""
    body = encode_events(reply_events(tokens))
    reads = [e + b"\n\n" for e in body.split(b"\n\n") if e]
    started = time.perf_counter()
    decoder = SSEDecoder()
    parser = ChunkParser("bench")
    got = 0
    for raw in reads:
        for payload in decoder.feed(raw):
            if payload == b"[DONE]":
                break
            for event in parser.chunk(json.loads(payload)):
                got += isinstance(event, TextDelta)
    elapsed = time.perf_counter() - started
    assert got == tokens, got
    return elapsed / tokens


def serve(port_out: multiprocessing.Queue, tokens: int, per_write: int) -> None:  # runs in a child process
    from aiohttp import web

    events = reply_events(tokens)
    writes = [
        encode_events(events[i : i + per_write], done=False) for i in range(0, len(events), per_write)
    ] + [b"data: [DONE]\n\n"]

    async def handle(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in writes:
            await response.write(piece)
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def over_loopback(port: int, tokens: int, repeats: int) -> dict[str, float]:
    llm = OpenAICompatibleLLM(f"http://127.0.0.1:{port}/v1", "bench")
    url = llm.url
    messages = [ChatMessage.user("hi")]
    client_cpu, client_wall, raw_cpu = [], [], []
    async with aiohttp.ClientSession() as session:
        for run in range(repeats + 1):  # the first run warms up (connect, imports)
            cpu, wall = time.process_time(), time.perf_counter()
            got = sum([isinstance(e, TextDelta) async for e in llm.chat(messages)])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            assert got == tokens, got
            raw = time.process_time()
            async with session.post(url, json={"model": "bench", "stream": True}) as response:
                async for _ in response.content.iter_any():
                    pass
            raw = time.process_time() - raw
            if run:
                client_cpu.append(cpu / tokens)
                client_wall.append(wall / tokens)
                raw_cpu.append(raw / tokens)
    await llm.aclose()
    return {
        "client_cpu_us_per_token": statistics.median(client_cpu) * 1e6,
        "client_wall_us_per_token": statistics.median(client_wall) * 1e6,
        "raw_read_cpu_us_per_token": statistics.median(raw_cpu) * 1e6,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--per-write", type=int, default=1, help="events per server write (1: a token per chunk)")
    ap.add_argument("--json", metavar="FILE", help="also write the results here")
    args = ap.parse_args()

    parse = statistics.median(parse_only(args.tokens) for _ in range(args.repeats)) * 1e6
    ctx = multiprocessing.get_context("spawn")
    ports: multiprocessing.Queue = ctx.Queue()
    server = ctx.Process(target=serve, args=(ports, args.tokens, args.per_write), daemon=True)
    server.start()
    try:
        port = ports.get(timeout=30)
        loop = asyncio.run(over_loopback(port, args.tokens, args.repeats))
    finally:
        server.terminate()
        server.join()

    results = {
        "benchmark": "llm_stream",
        "tokens": args.tokens,
        "repeats": args.repeats,
        "events_per_write": args.per_write,
        "parse_only_us_per_token": round(parse, 2),
        **{k: round(v, 2) for k, v in loop.items()},
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
