"""Server configuration: pydantic models with defaults that work, loaded from YAML.

`${NAME}` and `${NAME:-default}` in the YAML are replaced from the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from voxgate.agent.config import AgentConfig

DEFAULT_AGENT = "default"


class ConfigError(ValueError):
    pass


def parse_hostport(value: str, *, field: str) -> tuple[str, int]:
    """'HOST:PORT', '[v6]:PORT' or ':PORT' → (host, port)."""
    m = re.fullmatch(r"\[(?P<h6>[^\]]+)\]:(?P<p6>\d+)|(?P<h>[^:\[\]]*):(?P<p>\d+)", value.strip())
    if not m:
        raise ConfigError(f"{field}: {value!r} is not HOST:PORT (e.g. 0.0.0.0:9092 or [::]:9092)")
    host = m.group("h6") or m.group("h") or "0.0.0.0"
    port = int(m.group("p6") or m.group("p"))
    if not 0 <= port <= 65535:
        raise ConfigError(f"{field}: port {port} is out of range 0-65535")
    return host, port


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AudioSocketConfig(_Model):
    listen: str = Field("0.0.0.0:9092", description="HOST:PORT Asterisk connects to")
    codec: Literal["slin", "ulaw", "alaw"] = Field(
        "slin",
        description="What kind 0x10 carries inbound. 'slin' for the AudioSocket() app and for "
        "the channel driver with c(slin); 'ulaw'/'alaw' for Dial(AudioSocket/...) without c(), "
        "which forwards the caller's codec. Outbound is always slin.",
    )
    max_calls: int = Field(500, ge=1, description="Concurrent calls; more are refused with a hangup")
    uuid_timeout_ms: int = Field(5000, ge=100, description="Close a connection that sends no UUID")
    stall_timeout_ms: int = Field(1000, ge=10, description="Close a call whose message stops mid-way")
    max_frame_ms: int = Field(500, ge=20, description="Largest audio payload accepted, in ms")
    flood_burst_ms: int = Field(
        3000, ge=100, description="Audio allowed ahead of real time before a call counts as a flood"
    )
    max_messages_per_second: int = Field(400, ge=60)
    write_stall_ms: int = Field(5000, ge=100, description="Close a call whose peer stops reading")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        parse_hostport(v, field="audiosocket.listen")
        return v


class HttpConfig(_Model):
    listen: str = Field("0.0.0.0:8080", description="HOST:PORT for /health, /ready, /metrics and /calls")
    api_token: str | None = Field(
        None,
        repr=False,
        description="Bearer token for the calls API (POST/GET/DELETE /calls); without one, only "
        "clients on this machine (loopback) may place calls. Prefer the env VOXGATE_API_TOKEN",
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        parse_hostport(v, field="http.listen")
        return v


WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})
ARI_ENV = {
    "url": "VOXGATE_ARI_URL",
    "username": "VOXGATE_ARI_USER",
    "password": "VOXGATE_ARI_PASSWORD",
    "app": "VOXGATE_ARI_APP",
}
ENV = {  # dotted config field → environment variable
    **{f"ari.{field}": name for field, name in ARI_ENV.items()},
    "http.api_token": "VOXGATE_API_TOKEN",
}
ARI_FLAGS = {"url": "--ari-url", "username": "--ari-user", "password": "--ari-password", "app": "--ari-app"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]*")


def format_hostport(host: str, port: int) -> str:
    """(host, port) → 'HOST:PORT', bracketing IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AriConfig(_Model):
    url: str = Field(
        description="Base URL of Asterisk's HTTP server (http.conf), e.g. http://127.0.0.1:8088; "
        "ARI lives under its /ari prefix (a trailing /ari is accepted and dropped)",
    )
    username: str = Field(description="ARI user: a section of ari.conf with type = user")
    password: str = Field(repr=False, description="That user's password (prefer VOXGATE_ARI_PASSWORD)")
    app: str = Field(
        "voxgate",
        description="Stasis application name: the dialplan sends calls here with Stasis(APP)",
    )
    subscribe_all: bool = Field(
        False, description="subscribeAll on the events WebSocket: every channel's events, not only the app's"
    )
    media: Literal["audiosocket", "rtp", "websocket"] = Field(
        "audiosocket",
        description="How an ARI call gets its media leg: externalMedia with encapsulation=audiosocket "
        "(Asterisk connects to audiosocket.listen's port over TCP), RTP with ulaw over UDP, or "
        "chan_websocket "
        "(Asterisk 20.16.0 / 21.11.0 / 22.6.0 / 23.0.0 or newer)",
    )
    media_host: str | None = Field(
        None,
        description="voxgate's address as seen from Asterisk: where Asterisk connects or sends media. "
        "Defaults to the host of audiosocket.listen unless that is 0.0.0.0 / ::",
    )
    media_format: Literal["slin16", "slin"] = Field(
        "slin16",
        description="Audio format of the externalMedia AudioSocket leg: slin16 (wideband; needs "
        "Asterisk 20.17 / 21.12 / 22.7 / 23.1 or newer) or slin (8 kHz, any version)",
    )
    rtp_format: Literal["ulaw", "alaw"] = Field(
        "ulaw",
        description="Codec of the RTP media leg (media: rtp). Only G.711: Asterisk 22 discards RTP "
        "slin16 sent back to it; use media audiosocket or websocket for 16 kHz",
    )
    rtp_bind: str = Field(
        "0.0.0.0",
        description="Local address the RTP media legs bind their UDP ports on (media: rtp)",
    )
    websocket_format: Literal["slin16", "slin", "ulaw", "alaw"] = Field(
        "slin16", description="Audio format of the chan_websocket media leg (media: websocket)"
    )
    transfer_context: str | None = Field(
        None,
        description="Dialplan context a transfer continues in (the target is the extension). "
        "Default: the caller's own context",
    )
    reconnect_max_s: float = Field(
        5.0,
        gt=0,
        le=300,
        description="Longest wait between reconnects to the events WebSocket; keep it short: a call "
        "sent to Stasis() while voxgate is disconnected is dropped",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, v: str) -> str:
        parts = urlsplit(v.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PydanticCustomError(
                "ari_url",
                "{value} is not an http:// or https:// URL; give Asterisk's HTTP server, "
                "e.g. http://127.0.0.1:8088",
                {"value": repr(v)},
            )
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise PydanticCustomError(
                "ari_url", "{value}: the port is not in 0-65535", {"value": repr(v)}
            ) from None
        if parts.query or parts.fragment:
            raise PydanticCustomError("ari_url", "{value}: drop the ?query / #fragment", {"value": repr(v)})
        path = parts.path.rstrip("/")
        if path.endswith("/ari"):
            path = path[: -len("/ari")]
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    @field_validator("username")
    @classmethod
    def _check_username(cls, v: str) -> str:
        if v.lower() == "general":
            raise PydanticCustomError(
                "ari_username", "'general' is ari.conf's settings section; pick another user name", {}
            )
        if not _NAME.fullmatch(v):
            raise PydanticCustomError(
                "ari_username",
                "{value}: use letters, digits and _ . @ - (it is an ari.conf section name and "
                "the part before ':' in api_key)",
                {"value": repr(v)},
            )
        return v

    @field_validator("password")
    @classmethod
    def _check_password(cls, v: str) -> str:
        if not v:
            raise PydanticCustomError("ari_password", "empty; set the ari.conf user's password", {})
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in v):
            raise PydanticCustomError("ari_password", "contains a control character (newline, tab...)", {})
        return v

    @field_validator("app")
    @classmethod
    def _check_app(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise PydanticCustomError(
                "ari_app",
                "{value}: use letters, digits and _ . @ - (it goes into Stasis(APP) and the "
                "comma-separated app= list of the events URL)",
                {"value": repr(v)},
            )
        return v

    @field_validator("media_host")
    @classmethod
    def _check_media_host(cls, v: str | None) -> str | None:
        if v is None:
            return None
        host = v.strip()
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        if re.fullmatch(r"[^:\[\]]+:\d+|\[[^\]]*\]:\d+", v.strip()):
            raise PydanticCustomError(
                "ari_media_host",
                "{value}: give only the host; the port comes from audiosocket.listen",
                {"value": repr(v)},
            )
        if not host or re.search(r"[\s,()/\[\]]", host):
            raise PydanticCustomError(
                "ari_media_host", "{value} is not a host name or IP address", {"value": repr(v)}
            )
        if host in WILDCARD_HOSTS:
            raise PydanticCustomError(
                "ari_media_host",
                "{value} is a listen-on-everything address; Asterisk cannot connect to it. Give "
                "voxgate's address as seen from Asterisk, e.g. 10.0.0.5",
                {"value": repr(v)},
            )
        return host


class OutboundConfig(_Model):
    calls_per_second: float = Field(
        1.0,
        gt=0,
        le=1000,
        description="Outbound dial rate: starts are spaced 1/calls_per_second apart (give or take a few "
        "ms of timer jitter), so a closed one-second window can hold calls_per_second + 1",
    )
    max_concurrent: int = Field(10, ge=1, description="Most outbound calls from dialling to hangup at once")
    max_queued: int = Field(1000, ge=1, description="Most outbound calls waiting; more are refused (429)")
    endpoint_template: str = Field(
        "PJSIP/{number}",
        description="Dial string for a phone number, e.g. PJSIP/{number}@mytrunk; a 'to' that is "
        "already an endpoint (PJSIP/1000) is dialled as is",
    )
    caller_id: str | None = Field(None, description="Default caller id, e.g. '\"Clinic\" <+15551230000>'")
    amd: bool = Field(
        False,
        description="Answering-machine detection: dial through the amd_context (AMD() then Stasis), "
        "printed by voxgate asterisk-config",
    )
    amd_context: str = Field("voxgate-outbound", description="Dialplan context that runs AMD() then Stasis()")
    screen_s: float = Field(
        3.0,
        ge=0,
        le=30,
        description="Listen this long for the callee's first words and check them for a voicemail "
        "greeting (calls AMD did not mark as a person); 0 turns it off",
    )

    @field_validator("endpoint_template")
    @classmethod
    def _check_template(cls, v: str) -> str:
        if "{number}" not in v or "/" not in v:
            raise PydanticCustomError(
                "endpoint_template",
                "{value} needs a technology and a {{number}} placeholder, e.g. PJSIP/{{number}}@mytrunk",
                {"value": repr(v)},
            )
        return v


class ServerConfig(_Model):
    agent: str = Field(
        DEFAULT_AGENT,
        description="Agent that answers calls: a name under `agents`, 'default' (the offline demo "
        "agent) or a registered agent such as 'echo'",
    )
    agents: dict[str, AgentConfig] = Field(default_factory=dict, description="Agents defined here, by name")
    audiosocket: AudioSocketConfig = AudioSocketConfig()
    http: HttpConfig = HttpConfig()
    ari: AriConfig | None = Field(
        None, description="Asterisk REST Interface (call control); off unless ari.url is set"
    )
    outbound: OutboundConfig = Field(
        OutboundConfig(),
        description="Outbound calls (POST /calls); they need ari",  # type: ignore[call-arg]
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    uvloop: bool = True

    @field_validator("ari")
    @classmethod
    def _derive_media_host(cls, ari: AriConfig | None, info: ValidationInfo) -> AriConfig | None:
        audiosocket = info.data.get("audiosocket")
        if ari is None or ari.media_host is not None or audiosocket is None:
            return ari
        host, port = parse_hostport(audiosocket.listen, field="audiosocket.listen")
        if host not in WILDCARD_HOSTS:
            ari.media_host = host
        elif ari.media != "websocket":  # websocket: voxgate dials Asterisk, nothing to point back at
            raise PydanticCustomError(
                "ari_media_host_required",
                "required: audiosocket.listen is {listen} (every interface), so "
                "voxgate cannot tell Asterisk where to send the {media} media. Set ari.media_host to "
                "voxgate's address as seen from Asterisk (e.g. media_host: 10.0.0.5), or listen on "
                "that address (audiosocket.listen: 10.0.0.5:{port})",
                {"listen": audiosocket.listen, "media": ari.media, "port": port},
            )
        return ari

    @model_validator(mode="after")
    def _name_agents(self) -> ServerConfig:
        for key, agent in self.agents.items():
            if "name" not in agent.model_fields_set:
                agent.name = key
        return self


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate_env(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(
            f"${{{name}}} is used in the config but not set; export {name}=... or write ${{{name}:-default}}"
        )

    return _ENV_REF.sub(sub, text)


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors(include_input=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "ari_media_host_required":
            loc = "ari.media_host"  # raised while validating `ari` as a whole
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling or remove it"
        elif err["type"] == "missing" and len(err["loc"]) == 2 and err["loc"][0] == "ari":
            field = str(err["loc"][1])
            if field in ARI_ENV:
                msg = f"required when ARI is on; set ari.{field}, {ARI_ENV[field]} or {ARI_FLAGS[field]}"
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ServerConfig:
    data: dict[str, Any] = {}
    source = "command line"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        try:
            loaded = yaml.safe_load(interpolate_env(text))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        data = loaded or {}
    # precedence: flags (overrides) > environment > file > defaults
    env = {dotted: os.environ[name] for dotted, name in ENV.items() if os.environ.get(name)}
    for dotted, value in [*env.items(), *(overrides or {}).items()]:
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            if node.get(part) is None:  # absent, or left empty in the file (`ari:`)
                node[part] = {}
            node = node[part]
        node[leaf] = value
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
