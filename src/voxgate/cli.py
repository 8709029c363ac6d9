"""The `voxgate` command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Sequence

from voxgate import __version__
from voxgate.config import ConfigError, ServerConfig, load_config, parse_hostport
from voxgate.log import setup_logging

log = logging.getLogger("voxgate.cli")


def _dtmf_arg(value: str) -> tuple[float, str]:
    m = re.fullmatch(r"([0-9*#A-D]+)@(\d+(?:\.\d+)?)", value)
    if not m:
        raise argparse.ArgumentTypeError(f"{value!r}: expected DIGITS@SECONDS, e.g. 123#@2.5")
    return float(m.group(2)), m.group(1)


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="voxgate", description="AI voice agents on phone lines.")
    p.add_argument("--version", action="version", version=f"voxgate {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "serve",
        help="run the server (AudioSocket + HTTP)",
        description="Answer calls from Asterisk AudioSocket with an agent; serve "
        "/health, /ready and /metrics over HTTP.",
    )
    s.add_argument("--config", metavar="FILE", help="YAML config file")
    s.add_argument(
        "--agent",
        metavar="NAME",
        help="agent that answers calls: one defined in the config, 'default' (the offline demo "
        "agent, the default) or 'echo'",
    )
    s.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        help="answer calls with a VoiceApp (routes to handlers and agents) instead of --agent",
    )
    s.add_argument(
        "--audiosocket",
        metavar="HOST:PORT",
        help="AudioSocket listen address (default 0.0.0.0:9092)",
    )
    s.add_argument("--http", metavar="HOST:PORT", help="HTTP listen address (default 0.0.0.0:8080)")
    s.add_argument("--max-calls", type=int, metavar="N", help="cap on concurrent calls")
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    s.add_argument("--log-format", choices=["text", "json"])
    s.add_argument("--no-uvloop", action="store_true", help="use the standard asyncio loop")
    s.add_argument(
        "--ari-url", metavar="URL", help="Asterisk's HTTP server for ARI, e.g. http://127.0.0.1:8088"
    )
    s.add_argument("--ari-user", metavar="USER", help="ARI user from ari.conf (env VOXGATE_ARI_USER)")
    s.add_argument(
        "--ari-password",
        metavar="PASSWORD",
        help="ARI password; prefer the env VOXGATE_ARI_PASSWORD (a flag shows in ps)",
    )
    s.add_argument("--ari-app", metavar="NAME", help="Stasis application name (default voxgate)")

    c = sub.add_parser(
        "call",
        help="place a virtual call to an AudioSocket server",
        description="Dial an AudioSocket server as Asterisk does (UUID first, "
        "real-time 20 ms frames, EOF as hangup), play a WAV and record the reply "
        "time-aligned.",
    )
    c.add_argument("--audiosocket", metavar="HOST:PORT", default="127.0.0.1:9092")
    c.add_argument("--play", metavar="IN.wav", required=True, help="16-bit PCM WAV the caller says")
    c.add_argument("--record", metavar="OUT.wav", help="write what the agent sent back")
    c.add_argument(
        "--rate",
        type=int,
        choices=[8000, 16000],
        default=8000,
        help="8000 = kind 0x10 (AudioSocket app), 16000 = kind 0x12 (channel c(slin16))",
    )
    c.add_argument(
        "--dtmf",
        type=_dtmf_arg,
        action="append",
        default=[],
        metavar="DIGITS@SECONDS",
        help="press keys at a time into the call (repeatable)",
    )
    c.add_argument(
        "--hangup-after",
        type=float,
        metavar="SECONDS",
        help="hang up after this long (default: end of the WAV plus --tail)",
    )
    c.add_argument(
        "--tail",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="keep listening this long after the WAV ends (default 2)",
    )
    c.add_argument("--uuid", help="call UUID to send (default: random)")
    c.add_argument("--json", action="store_true", help="print the call summary as JSON")

    ac = sub.add_parser(
        "asterisk-config",
        help="print the Asterisk config that matches this voxgate config",
        description="Print extensions.conf (AudioSocket application, AudioSocket channel driver "
        "and ARI paths), ari.conf and http.conf snippets whose addresses, ports and names come "
        "from voxgate's config (and VOXGATE_ARI_* variables).",
    )
    ac.add_argument("--config", metavar="FILE", help="YAML config file")
    ac.add_argument(
        "--audiosocket-host",
        metavar="HOST",
        help="voxgate's address as seen from Asterisk (default: ari.media_host, else the host of "
        "audiosocket.listen)",
    )
    ac.add_argument("--section", choices=["dialplan", "ari", "http", "all"], default="all")
    ac.add_argument(
        "--show-password",
        action="store_true",
        help="write ari.password into ari.conf instead of a placeholder",
    )

    a = sub.add_parser("agents", help="list the agents this install can run")
    a.set_defaults()

    cfg = sub.add_parser("config", help="work with config files")
    cfg_sub = cfg.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    chk = cfg_sub.add_parser(
        "check",
        help="validate a config file",
        description="Validate FILE: every field, ${ENV} references, provider names (and whether "
        "their extras are installed) and tool functions. Prints what is wrong and how to fix it.",
    )
    chk.add_argument("file", metavar="FILE")
    return p


def _serve_config(args: argparse.Namespace) -> ServerConfig | None:
    """The config `serve` runs with (flags > environment > file > defaults); None after an error."""
    overrides: dict[str, object] = {}
    for key, value in (
        ("agent", args.agent),
        ("audiosocket.listen", args.audiosocket),
        ("http.listen", args.http),
        ("audiosocket.max_calls", args.max_calls),
        ("log_level", args.log_level),
        ("log_format", args.log_format),
        ("ari.url", args.ari_url),
        ("ari.username", args.ari_user),
        ("ari.password", args.ari_password),
        ("ari.app", args.ari_app),
    ):
        if value is not None:
            overrides[key] = value
    if args.no_uvloop:
        overrides["uvloop"] = False
    if args.ari_password is not None:
        print(
            "voxgate: warning: --ari-password is visible to every user of this machine (ps); "
            "export VOXGATE_ARI_PASSWORD instead",
            file=sys.stderr,
        )
    try:
        return load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"voxgate: {exc}", file=sys.stderr)
        return None


def _serve(args: argparse.Namespace) -> int:
    from voxgate.agent.base import AgentError
    from voxgate.server.app import VoxgateServer, run_event_loop

    config = _serve_config(args)
    if config is None:
        return 2
    setup_logging(config.log_level, config.log_format)

    if args.app and "" not in sys.path:  # `--app myivr:app` finds myivr.py here, as uvicorn does
        sys.path.insert(0, "")

    async def main() -> None:
        server = VoxgateServer(config, app=args.app)
        await server.run_forever()

    try:
        run_event_loop(main(), config.uvloop)
    except AgentError as exc:
        print(f"voxgate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"voxgate: cannot listen: {exc}", file=sys.stderr)
        return 1
    return 0


def _call(args: argparse.Namespace) -> int:
    from voxgate.audio.convert import convert_all
    from voxgate.audio.format import AudioFormat, Encoding
    from voxgate.audio.wav import WavError, read_wav, write_wav
    from voxgate.testing.caller import CallerScript, place_call

    setup_logging("warning")
    try:
        host, port = parse_hostport(args.audiosocket, field="--audiosocket")
        pcm, fmt = read_wav(args.play)
    except (ConfigError, WavError, OSError) as exc:
        print(f"voxgate call: {exc}", file=sys.stderr)
        return 2
    pcm = convert_all(pcm, fmt, AudioFormat(Encoding.PCM16, args.rate))
    script = CallerScript(
        audio=pcm,
        rate=args.rate,
        dtmf=args.dtmf,
        hangup_after=args.hangup_after,
        tail=args.tail,
        call_uuid=args.uuid,
        record=bool(args.record),
    )
    try:
        result = asyncio.run(place_call(host, port, script))
    except OSError as exc:
        print(f"voxgate call: cannot connect to {args.audiosocket}: {exc}", file=sys.stderr)
        return 1
    if args.record:
        write_wav(args.record, bytes(result.recording), args.rate)
    gaps = result.interarrival_ms()
    summary = {
        "call_id": result.call_id,
        "ended_by": result.ended_by,
        "error": result.error,
        "frames_sent": result.frames_sent,
        "frames_received": result.frames_received,
        "received_kinds": sorted(f"0x{k:02x}" for k in result.kinds_received),
        "max_interarrival_ms": round(max(gaps), 2) if gaps else None,
        "record": args.record,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        for k, v in summary.items():
            print(f"{k}: {v}")
    return 1 if result.ended_by == "error" else 0


def _asterisk_config(args: argparse.Namespace) -> int:
    from voxgate.telephony.asterisk_config import render

    try:
        config = load_config(args.config)
        out = render(
            config, args.section, audiosocket_host=args.audiosocket_host, show_password=args.show_password
        )
    except ConfigError as exc:
        print(f"voxgate asterisk-config: {exc}", file=sys.stderr)
        return 2
    for warning in out.warnings:
        print(f"voxgate asterisk-config: note: {warning}", file=sys.stderr)
    sys.stdout.write(out.text)
    return 0


def _agents(_: argparse.Namespace) -> int:
    from voxgate.agent.base import available_agents

    for name in available_agents():
        print(name)
    return 0


def _config(args: argparse.Namespace) -> int:
    from voxgate.agent.check import check_config

    problems, summary = check_config(args.file)
    for line in summary:
        print(line)
    if problems:
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    print(f"{args.file}: ok")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    handlers = {
        "serve": _serve,
        "call": _call,
        "asterisk-config": _asterisk_config,
        "agents": _agents,
        "config": _config,
    }
    return handlers[args.command](args)
