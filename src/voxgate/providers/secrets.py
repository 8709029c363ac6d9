"""API keys: from the config, a file or the environment; never logged, never in error text.

    key = resolve_secret("deepgram", api_key=None, api_key_env=None, api_key_file=None,
                         default_env="DEEPGRAM_API_KEY")
    headers = {"Authorization": f"Token {key.value}"}

`Secret` prints as `Secret('deepgram', ***)`, so a key that ends up in a log line, a repr or an
exception shows nothing. Errors say which setting is missing and how to set it, never the value.
`redact()` scrubs known key values out of text that came from elsewhere (a server's error body
may echo the header it rejected).
"""

from __future__ import annotations

import os
from pathlib import Path

_KNOWN: set[str] = set()  # every key resolved in this process, for redact()


class Secret:
    """A key that does not show itself. `value` is for the one header that needs it."""

    __slots__ = ("_value", "provider", "source")

    def __init__(self, provider: str, value: str, source: str) -> None:
        self.provider = provider
        self._value = value
        self.source = source  # "config", "file /run/keys/dg", "env DEEPGRAM_API_KEY" — no value
        if len(value) >= 8:
            _KNOWN.add(value)

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.provider!r}, ***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class MissingSecret(ValueError):
    """No key was given; the message says where one can be put."""


def resolve_secret(
    provider: str,
    *,
    api_key: str | Secret | None = None,
    api_key_env: str | None = None,
    api_key_file: str | Path | None = None,
    default_env: str | None = None,
    required: bool = True,
) -> Secret | None:
    """The key for `provider`: `api_key` (the value itself), else `api_key_file` (its first
    line), else the variable `api_key_env`, else `default_env` (e.g. OPENAI_API_KEY)."""
    if isinstance(api_key, Secret):
        return api_key
    if api_key:
        return Secret(provider, api_key.strip(), "config")
    if api_key_file:
        path = Path(api_key_file).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise MissingSecret(
                f"{provider}: cannot read api_key_file {str(path)!r} ({exc.strerror or type(exc).__name__})"
            ) from None
        value = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not value:
            raise MissingSecret(f"{provider}: api_key_file {str(path)!r} is empty")
        return Secret(provider, value, f"file {path}")
    for name, field in ((api_key_env, "api_key_env"), (default_env, None)):
        if not name:
            continue
        value = os.environ.get(name, "").strip()
        if value:
            return Secret(provider, value, f"env {name}")
        if field is not None:
            raise MissingSecret(f"{provider}: the environment variable {name} ({field}) is not set or empty")
    if not required:
        return None
    where = f"set {default_env}, or " if default_env else ""
    raise MissingSecret(
        f"{provider} needs an API key: {where}give api_key_env (a variable name) or api_key_file "
        "(a file holding the key) in its options"
    )


def redact(text: str, *secrets: Secret | None) -> str:
    """`text` with every known key value (and those given) replaced by ***."""
    values = {s.value for s in secrets if s is not None} | _KNOWN
    for value in sorted(values, key=len, reverse=True):
        if value and value in text:
            text = text.replace(value, "***")
    return text
