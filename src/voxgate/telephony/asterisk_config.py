"""Render the Asterisk side of a voxgate install: extensions.conf, ari.conf and http.conf.

Every address, port and name comes from voxgate's own config, so the two sides agree. Minimum
Asterisk versions in the comments are those in the protocol notes (audiosocket.md, ari.md).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from voxgate.config import (
    WILDCARD_HOSTS,
    AriConfig,
    ConfigError,
    ServerConfig,
    format_hostport,
    parse_hostport,
)

Section = Literal["dialplan", "ari", "http", "all"]
SECTIONS: tuple[Section, ...] = ("dialplan", "ari", "http", "all")

CONTEXT = "voxgate"
EXTEN_APP, EXTEN_CHANNEL, EXTEN_ARI = "1000", "1001", "1002"
HOST_PLACEHOLDER = "VOXGATE_HOST"
PASSWORD_PLACEHOLDER = "CHANGE_ME"
FALLBACK_DIAL = "PJSIP/operator"
TRANSFERS = "voxgate-transfers"

V_UUID_FUNC = "20.12.0 / 21.7.0 / 22.2.0"
V_CONTINUE = "20.14.0 / 21.9.0 / 22.4.0 / 23.0.0"
V_SLIN_KINDS = "20.17.0 / 21.12.0 / 22.7.0 / 23.1.0"
V_WEBSOCKET = "20.16.0 / 21.11.0 / 22.6.0 / 23.0.0"

_HOST = re.compile(r"[A-Za-z0-9._:%-]+")


@dataclass
class Rendered:
    text: str
    warnings: list[str] = field(default_factory=list)


def check_host(value: str, *, name: str = "--audiosocket-host") -> str:
    """A host name or IP literal Asterisk can connect to (brackets around IPv6 are dropped)."""
    host = value.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not _HOST.fullmatch(host) or re.fullmatch(r"[^:]+:\d+", host):
        raise ConfigError(
            f"{name}: {value!r} is not a host name or IP address (no port: it comes from the config)"
        )
    if host in WILDCARD_HOSTS:
        raise ConfigError(
            f"{name}: {value!r} means 'every interface'; Asterisk cannot connect to it. "
            "Give voxgate's address as seen from Asterisk, e.g. 10.0.0.5"
        )
    return host


def audiosocket_target(config: ServerConfig, host: str | None, warnings: list[str]) -> str:
    """HOST:PORT Asterisk dials for AudioSocket: --audiosocket-host, ari.media_host, the listen host."""
    listen_host, port = parse_hostport(config.audiosocket.listen, field="audiosocket.listen")
    if host is not None:
        chosen = check_host(host)
    elif config.ari is not None and config.ari.media_host is not None:
        chosen = config.ari.media_host
    elif listen_host not in WILDCARD_HOSTS:
        chosen = listen_host
    else:
        chosen = HOST_PLACEHOLDER
        warnings.append(
            f"audiosocket.listen is {config.audiosocket.listen} (every interface), so the dialplan says "
            f"{HOST_PLACEHOLDER}: replace it, or pass --audiosocket-host with voxgate's address as seen "
            "from Asterisk"
        )
    return format_hostport(chosen, port)


def _banner(name: str) -> list[str]:
    return [f"; ---- {name} " + "-" * max(4, 88 - len(name)), "; written by `voxgate asterisk-config`"]


def _after_audiosocket(config: ServerConfig, target: str) -> list[str]:
    """Ask voxgate how the call ended (GET /calls/<uuid>/outcome through CURL()) and go on from it:
    AudioSocket returns the same way for a goodbye, a transfer and a refusal when voxgate is full."""
    host, _ = parse_hostport(target, field="AudioSocket target")  # drops IPv6 brackets
    _, http_port = parse_hostport(config.http.listen, field="http.listen")
    url = f"http://{format_hostport(host, http_port)}/calls/${{VOXGATE_ID}}/outcome"
    return [
        "; Ask voxgate how it ended (func_curl): 'hangup' after a goodbye, 'transfer:TARGET' when the",
        "; agent transfers, nothing when voxgate was full or unreachable (then the fallback below).",
        f" same => n,Set(VOXGATE_OUTCOME=${{CURL({url})}})",
        ' same => n,GotoIf($["${VOXGATE_OUTCOME}" = "hangup"]?done)',
        ' same => n,GotoIf($["${VOXGATE_OUTCOME:0:9}" = "transfer:"]'
        f"?{TRANSFERS},${{VOXGATE_OUTCOME:9}},1)",
        f" same => n,Dial({FALLBACK_DIAL},30)",
        "; or: same => n,Queue(operators)",
        " same => n(done),Hangup()",
    ]


def render_dialplan(config: ServerConfig, target: str, warnings: list[str]) -> list[str]:
    fallback = [
        f" same => n,Dial({FALLBACK_DIAL},30)",
        "; or: same => n,Queue(operators)",
        " same => n,Hangup()",
    ]
    codec = config.audiosocket.codec
    lines = [
        *_banner("extensions.conf"),
        f"; Extension numbers are examples. Send calls here with Goto({CONTEXT},{EXTEN_APP},1), or put",
        f"; `include => {CONTEXT}` in the context your calls arrive in. Replace {FALLBACK_DIAL} with the",
        "; endpoint or queue that takes transfers.",
        f"[{CONTEXT}]",
        "",
        f"; {EXTEN_APP}: AudioSocket dialplan application (app_audiosocket; Asterisk 18.0+).",
        "; AudioSocket() does not answer: without Answer() first, Asterisk opens the connection, closes",
        "; it without sending the UUID, and the application fails. Audio is always slin 8 kHz (kind",
        f"; 0x10). ${{UUID()}} (func_uuid) needs {V_UUID_FUNC} or newer. The application hangs",
        "; up after 2 s with no frame either way (20.14 / 21.9 / 22.4 / 23.0+); voxgate sends a frame",
        "; every 20 ms, silence included, so that fires only when media stops.",
    ]
    if codec != "slin":
        lines.append(
            f"; WARNING: audiosocket.codec is {codec}, but this application always sends slin; "
            "use codec: slin for this path."
        )
        warnings.append(
            f"audiosocket.codec is {codec}: right for Dial(AudioSocket/...) without c(), wrong for the "
            "AudioSocket() application, which always sends slin"
        )
    lines += [
        f"exten => {EXTEN_APP},1,Answer()",
        " same => n,Set(VOXGATE_ID=${UUID()})",
        f" same => n,AudioSocket(${{VOXGATE_ID}},{target})",
        "; When voxgate ends the AudioSocket leg, AudioSocket() returns 0 and the dialplan goes on here",
        f"; ({V_CONTINUE} or newer; older versions hang up). voxgate ends the leg",
        "; the same way when its agent transfers the call, when the agent says goodbye and when voxgate",
        f"; is full (audiosocket.max_calls = {config.audiosocket.max_calls}), so all three arrive here.",
        "; A caller hang-up ends the call; so does a failed connection to voxgate (2 s connect timeout).",
        *_after_audiosocket(config, target),
        "",
        f"; {EXTEN_CHANNEL}: AudioSocket channel driver (chan_audiosocket), wideband. c(slin16) makes",
        "; Asterisk send and expect kind 0x12 (slin 16 kHz):",
        f"; {V_SLIN_KINDS} or newer. Older versions label every frame 0x10",
        "; and read it as 8 kHz: use c(slin) there. Without c() the",
        "; caller's codec (often ulaw) travels inside kind 0x10. The AudioSocket channel answers itself.",
        "; When voxgate hangs up (goodbye, transfer, full) or cannot be reached, Dial() returns and the",
        "; dialplan goes on.",
        f"exten => {EXTEN_CHANNEL},1,Set(VOXGATE_ID=${{UUID()}})",
        f" same => n,Dial(AudioSocket/{target}/${{VOXGATE_ID}}/c(slin16))",
        *_after_audiosocket(config, target),
        "",
        "; Where the agent's transfer_call targets go (the target names your agent uses). Add one",
        "; extension per target.",
        f"[{TRANSFERS}]",
        f"exten => operator,1,Dial({FALLBACK_DIAL},30)",
        " same => n,Hangup()",
        "",
    ]
    ari = config.ari
    if ari is None:
        lines += [
            f"; {EXTEN_ARI}: ARI path not rendered: ARI is not configured (set ari.url, ari.username and",
            "; ari.password in the config, or VOXGATE_ARI_URL / VOXGATE_ARI_USER / VOXGATE_ARI_PASSWORD).",
        ]
        return lines
    events = f"{ari.url}/ari/events?app={ari.app}".replace("http", "ws", 1)
    lines += [
        f"; {EXTEN_ARI}: ARI (res_ari). Stasis({ari.app}) hands the call to voxgate's ARI application, which",
        f"; must be connected: {events}",
        "; While it is not, Stasis() fails (STASISSTATUS=FAILED) and Asterisk logs",
        f"; \"Stasis app '{ari.app}' doesn't exist\".",
    ]
    if ari.media == "audiosocket":
        _, port = parse_hostport(config.audiosocket.listen, field="audiosocket.listen")
        media_target = format_hostport(ari.media_host or HOST_PLACEHOLDER, port)
        lines += [
            f"; Media leg: externalMedia, encapsulation=audiosocket: Asterisk connects to {media_target}",
            "; (chan_audiosocket must be loaded).",
        ]
    elif ari.media == "rtp":
        lines += [
            f"; Media leg: RTP ({ari.rtp_format}): Asterisk sends RTP over UDP to {ari.media_host}",
            f"; (a port per call, bound on {ari.rtp_bind}); allow that UDP traffic from Asterisk to voxgate.",
        ]
    else:
        lines += [
            f"; Media leg: chan_websocket ({V_WEBSOCKET} or newer): voxgate",
            "; connects to Asterisk's HTTP server (/media/<id>); nothing connects back to voxgate.",
        ]
    lines += [
        f"exten => {EXTEN_ARI},1,Stasis({ari.app})",
        "; If Stasis() fails (voxgate not connected), give the caller somewhere to go:",
        *fallback,
        "",
        *_outbound_context(config, ari),
    ]
    return lines


def _outbound_context(config: ServerConfig, ari: AriConfig) -> list[str]:
    out = config.outbound
    if not out.amd:
        return [
            "; Outbound calls (POST /calls) go straight into Stasis() when answered. With outbound.amd: true",
            f"; they are dialled through the {out.amd_context} context running AMD(); this prints it then.",
        ]
    return [
        f"; Outbound calls (POST /calls, outbound.amd: true): voxgate dials into {out.amd_context},s,1.",
        "; AMD() (app_amd) sets AMDSTATUS / AMDCAUSE; voxgate reads them once Stasis() hands it the",
        "; answered call, then talks, leaves the voicemail_drop message, or hangs up on a machine.",
        f"[{out.amd_context}]",
        "exten => s,1,AMD()",
        f" same => n,Stasis({ari.app},outbound)",
        " same => n,Hangup()",
        "",
    ]


def render_ari_conf(config: ServerConfig, show_password: bool) -> list[str]:
    ari = _require_ari(config)
    if show_password:
        password = ari.password.replace(";", r"\;")  # ';' starts a comment in Asterisk config files
        note = "; the password voxgate uses (ari.password)"
    else:
        password = PASSWORD_PLACEHOLDER
        note = "; must equal voxgate's ari.password (VOXGATE_ARI_PASSWORD); --show-password writes it here"
    return [
        *_banner("ari.conf"),
        f"; ARI (res_ari) for voxgate, which logs in as {ari.username!r} and registers the Stasis",
        f"; application {ari.app!r}. It needs write access (a read-only user gets 403 on answer, play...).",
        "[general]",
        "enabled = yes",
        "",
        f"[{ari.username}]",
        "type = user",
        "read_only = no",
        note,
        f"password = {password}",
        "password_format = plain",
        "",
    ]


def render_http_conf(config: ServerConfig, warnings: list[str]) -> list[str]:
    ari = _require_ari(config)
    url = urlsplit(ari.url)
    host = url.hostname or ""
    lines = [
        *_banner("http.conf"),
        f"; Asterisk's HTTP server, which serves ARI under /ari; voxgate reaches it at {ari.url}",
        "; (ari.url). Asterisk's own default port is 8088.",
    ]
    if url.scheme == "https":
        warnings.append("ari.url is https: set up TLS in http.conf by hand; only enabled = yes is rendered")
        return [
            *lines,
            "; ari.url is https: configure Asterisk's TLS listener by hand (8089 is the usual port);",
            "; this generator writes only the plain-HTTP settings.",
            "[general]",
            "enabled = yes",
            "",
        ]
    if host == "localhost":
        bindaddr = "127.0.0.1"
    else:
        try:
            bindaddr = str(ipaddress.ip_address(host))
        except ValueError:
            bindaddr = "0.0.0.0"
            lines.append(
                f"; ari.url names {host!r}, not an address: listening on every interface; "
                "put the address voxgate connects to here to narrow it."
            )
    if url.path:
        warnings.append(f"ari.url has the path {url.path!r}: Asterisk must serve ARI under {url.path}/ari")
    return [
        *lines,
        "[general]",
        "enabled = yes",
        f"bindaddr = {bindaddr}",
        f"bindport = {url.port or 80}",
        "",
    ]


def _require_ari(config: ServerConfig) -> AriConfig:
    if config.ari is None:
        raise ConfigError(
            "ARI is not configured: set ari.url, ari.username and ari.password in the config file "
            "(or VOXGATE_ARI_URL, VOXGATE_ARI_USER, VOXGATE_ARI_PASSWORD)"
        )
    return config.ari


def render(
    config: ServerConfig,
    section: Section = "all",
    *,
    audiosocket_host: str | None = None,
    show_password: bool = False,
) -> Rendered:
    """The requested config snippets as one text; `warnings` are for the operator (stderr)."""
    if section not in SECTIONS:
        raise ConfigError(f"--section: {section!r} is not one of {', '.join(SECTIONS)}")
    warnings: list[str] = []
    lines: list[str] = []
    if section in ("dialplan", "all"):
        lines += render_dialplan(config, audiosocket_target(config, audiosocket_host, warnings), warnings)
    if section == "all" and config.ari is None:
        warnings.append("ARI is not configured: ari.conf and http.conf were not rendered")
    elif section in ("ari", "all"):
        lines += render_ari_conf(config, show_password)
    if section in ("http", "all") and (section == "http" or config.ari is not None):
        lines += render_http_conf(config, warnings)
    return Rendered("\n".join(lines).rstrip("\n") + "\n", warnings)
