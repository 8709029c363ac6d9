"""Server configuration: pydantic models with defaults that work, loaded from YAML.

`${NAME}` and `${NAME:-default}` in the YAML are replaced from the environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

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
    listen: str = Field("0.0.0.0:8080", description="HOST:PORT for /health, /ready, /metrics")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, v: str) -> str:
        parse_hostport(v, field="http.listen")
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
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    uvloop: bool = True

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
        if err["type"] == "extra_forbidden":
            msg = "unknown field; check the spelling or remove it"
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
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        return ServerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from None
