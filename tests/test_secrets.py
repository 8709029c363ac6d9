"""API keys: where they come from, and that they never show in text."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from voxgate.providers.secrets import MissingSecret, Secret, redact, resolve_secret

KEY = "sk-test-0123456789abcdef"


def test_precedence_value_file_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", "from-named-env-123")
    monkeypatch.setenv("OPENAI_API_KEY", "from-default-env-123")
    key_file = tmp_path / "key"
    key_file.write_text("from-file-12345\n# comment line\n")
    resolve = lambda **kw: resolve_secret("openai", default_env="OPENAI_API_KEY", **kw)  # noqa: E731
    assert resolve(api_key=KEY, api_key_file=key_file).value == KEY
    found = resolve(api_key_file=key_file, api_key_env="MY_KEY")
    assert (found.value, found.source) == ("from-file-12345", f"file {key_file}")
    assert resolve(api_key_env="MY_KEY").source == "env MY_KEY"
    assert resolve().value == "from-default-env-123"


def test_missing_keys_say_where_to_put_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    monkeypatch.delenv("NOT_SET_HERE", raising=False)
    with pytest.raises(MissingSecret, match="set DEEPGRAM_API_KEY, or give api_key_env"):
        resolve_secret("deepgram", default_env="DEEPGRAM_API_KEY")
    with pytest.raises(MissingSecret, match="NOT_SET_HERE \\(api_key_env\\) is not set"):
        resolve_secret("deepgram", api_key_env="NOT_SET_HERE", default_env="DEEPGRAM_API_KEY")
    with pytest.raises(MissingSecret, match="cannot read api_key_file"):
        resolve_secret("deepgram", api_key_file=tmp_path / "nope")
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(MissingSecret, match="is empty"):
        resolve_secret("deepgram", api_key_file=tmp_path / "empty")
    assert resolve_secret("deepgram", required=False) is None


def test_a_secret_never_shows_itself(caplog: pytest.LogCaptureFixture) -> None:
    secret = resolve_secret("openai", api_key=KEY)
    assert secret is not None
    text = f"{secret} {secret!r} {[secret]} {dict(k=secret)}"
    assert KEY not in text and "***" in text
    logging.getLogger("t").warning("using %s", secret)
    assert KEY not in caplog.text
    # A server that echoes the rejected header back: scrubbed before it reaches an error.
    assert redact(f'401: invalid key "Bearer {KEY}"') == '401: invalid key "Bearer ***"'
    assert Secret("x", KEY, "config") == secret
