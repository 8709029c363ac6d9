"""`voxgate asterisk-config`, the ARI config section and its env/flag precedence."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voxgate.cli import _build_parser, _serve_config, main
from voxgate.config import ARI_ENV, ConfigError, ServerConfig, load_config
from voxgate.telephony.asterisk_config import render

ARI_YAML = """\
audiosocket: {{listen: "{listen}"}}
ari:
  url: {url}
  username: {user}
  password: "{password}"
  app: {app}
"""


@pytest.fixture(autouse=True)
def _no_ari_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ARI_ENV.values():
        monkeypatch.delenv(name, raising=False)


def write_config(
    tmp_path: Path,
    *,
    listen: str = "10.0.0.5:9092",
    url: str = "http://127.0.0.1:8088",
    user: str = "asterisk",
    password: str = "s3cret",
    app: str = "voxgate",
    extra: str = "",
) -> str:
    path = tmp_path / "voxgate.yaml"
    text = ARI_YAML.format(listen=listen, url=url, user=user, password=password, app=app)
    path.write_text(text + extra)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


# --- a small checker for Asterisk's config syntax -------------------------------------------------

_APP = re.compile(r"([A-Za-z][A-Za-z0-9_]*)\((.*)\)")


def _balanced(text: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    for ch in text:
        if ch in "({[":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


def check_asterisk_syntax(text: str) -> list[str]:
    """Problems in `text` as Asterisk config: [section], key = value, exten/same => ..., comments."""
    problems: list[str] = []
    section: str | None = None
    in_extension = False
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        where = f"line {n} {raw!r}"
        if ";" in line.replace("\\;", ""):
            problems.append(f"{where}: an unescaped ';' starts a comment mid-line")
            continue
        if m := re.fullmatch(r"\[([^\]\s]+)\]", line):
            section, in_extension = m.group(1), False
            continue
        if section is None:
            problems.append(f"{where}: setting before any [section]")
            continue
        if m := re.fullmatch(r"(exten|same)\s*=>\s*(.+)", line):
            if m.group(1) == "exten":
                parts = m.group(2).split(",", 2)
                if len(parts) != 3 or not re.fullmatch(r"_?[0-9A-Za-z*#.+\[\]-]+", parts[0]):
                    problems.append(f"{where}: expected exten => EXTEN,PRIORITY,App(args)")
                    continue
                prio, app = parts[1], parts[2]
                in_extension = True
            else:
                if not in_extension:
                    problems.append(f"{where}: 'same =>' without an extension before it")
                    continue
                prio, _, app = m.group(2).partition(",")
            if not re.fullmatch(r"(?:n|\d+)(?:\([A-Za-z_][A-Za-z0-9_-]*\))?", prio):
                problems.append(f"{where}: priority {prio!r} is not a number or n (label optional)")
            if not _APP.fullmatch(app) or not _balanced(app):
                problems.append(f"{where}: {app!r} is not App(args) with balanced brackets")
            continue
        if re.fullmatch(r"include\s*=>\s*[A-Za-z0-9_-]+", line):
            continue
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\s*=\s*\S.*", line):
            problems.append(f"{where}: not 'key = value'")
    return problems


def sections(text: str) -> list[str]:
    return re.findall(r"^\[([^\]]+)\]$", text, flags=re.M)


def test_checker_catches_broken_config() -> None:
    assert check_asterisk_syntax("[ok]\nexten => 1,1,Answer()\n same => n,Hangup()\nkey = v\n") == []
    bad = (
        "key = before section\n"
        "[ctx]\n"
        "exten => 1,1,AudioSocket(${UUID(),h:1)\n"
        "exten => 1,x,Answer()\n"
        "not a setting\n"
        "password = a;b\n"
    )
    problems = check_asterisk_syntax(bad)
    assert len(problems) == 5, problems
    assert check_asterisk_syntax("[c]\n same => n,Hangup()\n")  # same => needs an exten first


# --- output -------------------------------------------------------------------------------------


def test_default_config_renders_dialplan_with_placeholder_host(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "asterisk-config")
    assert rc == 0
    assert check_asterisk_syntax(out) == []
    assert sections(out) == ["voxgate", "voxgate-transfers"]  # no ARI configured: no ari.conf / http.conf
    assert (
        "exten => 1000,1,Answer()\n same => n,Set(VOXGATE_ID=${UUID()})\n"
        " same => n,AudioSocket(${VOXGATE_ID},VOXGATE_HOST:9092)"
    ) in out
    assert "Dial(AudioSocket/VOXGATE_HOST:9092/${VOXGATE_ID}/c(slin16))" in out
    # After AudioSocket the dialplan asks voxgate how the call ended and branches on it.
    assert "Set(VOXGATE_OUTCOME=${CURL(http://VOXGATE_HOST:8080/calls/${VOXGATE_ID}/outcome)})" in out
    assert "?voxgate-transfers,${VOXGATE_OUTCOME:9},1)" in out
    assert "Stasis(" not in out
    assert "--audiosocket-host" in err and "ARI is not configured" in err


def test_full_output_is_valid_and_complete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "asterisk-config", "--config", write_config(tmp_path))
    assert rc == 0, err
    assert check_asterisk_syntax(out) == []
    assert sections(out) == ["voxgate", "voxgate-transfers", "general", "asterisk", "general"]
    # dialplan: the app path answers first; after voxgate ends the leg it asks how the call ended:
    # a goodbye hangs up, a transfer goes to its target, anything else falls back to the operator
    assert re.search(
        r"exten => 1000,1,Answer\(\)\n same => n,Set\(VOXGATE_ID=\$\{UUID\(\)\}\)\n"
        r" same => n,AudioSocket\(\$\{VOXGATE_ID\},10\.0\.0\.5:9092\)\n"
        r"(;.*\n)* same => n,Set\(VOXGATE_OUTCOME=\$\{CURL\(http://10\.0\.0\.5:8080/calls/\$\{VOXGATE_ID\}/outcome\)\}\)\n"
        r' same => n,GotoIf\(\$\["\$\{VOXGATE_OUTCOME\}" = "hangup"\]\?done\)\n'
        r".*transfer:.*\n same => n,Dial\(PJSIP/operator,30\)\n(;.*\n)* same => n\(done\),Hangup\(\)",
        out,
    )
    assert "exten => 1001,1,Set(VOXGATE_ID=${UUID()})" in out
    assert "Dial(AudioSocket/10.0.0.5:9092/${VOXGATE_ID}/c(slin16))" in out
    assert "exten => 1002,1,Stasis(voxgate)" in out
    assert "Queue(" in out
    # minimum versions from the notes
    for version in ("20.17.0 / 21.12.0 / 22.7.0 / 23.1.0", "20.14.0 / 21.9.0 / 22.4.0 / 23.0.0", "20.12.0"):
        assert version in out
    # ari.conf and http.conf
    assert "[asterisk]\ntype = user\nread_only = no\n" in out
    assert "password = CHANGE_ME\npassword_format = plain" in out
    assert "s3cret" not in out
    assert "enabled = yes\nbindaddr = 127.0.0.1\nbindport = 8088" in out
    assert err == ""


def test_every_value_follows_the_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(
        tmp_path,
        listen="192.168.7.9:7777",
        url="http://192.168.7.1:8190/ari/",
        user="agentgw",
        app="helpdesk",
        extra="  media_host: 172.16.0.2\n",
    )
    rc, out, _ = run(capsys, "asterisk-config", "--config", path)
    assert rc == 0
    assert check_asterisk_syntax(out) == []
    assert "AudioSocket(${VOXGATE_ID},172.16.0.2:7777)" in out  # ari.media_host wins over the listen host
    assert "Dial(AudioSocket/172.16.0.2:7777/${VOXGATE_ID}/c(slin16))" in out
    assert "Stasis(helpdesk)" in out and "Stasis(voxgate)" not in out
    assert "ws://192.168.7.1:8190/ari/events?app=helpdesk" in out
    assert "[agentgw]" in out
    assert "bindaddr = 192.168.7.1\nbindport = 8190" in out
    assert "9092" not in out and "8088\n" not in out


def test_listen_host_and_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "as.yaml"
    cfg.write_text("audiosocket: {listen: '10.1.2.3:9100', max_calls: 42}\n")
    rc, out, err = run(capsys, "asterisk-config", "--config", str(cfg), "--section", "dialplan")
    assert rc == 0 and err == ""
    assert "AudioSocket(${VOXGATE_ID},10.1.2.3:9100)" in out
    assert "audiosocket.max_calls = 42" in out
    rc, out, _ = run(capsys, "asterisk-config", "--config", str(cfg), "--audiosocket-host", "pbx-gw.lan")
    assert "AudioSocket(${VOXGATE_ID},pbx-gw.lan:9100)" in out
    rc, out, _ = run(capsys, "asterisk-config", "--config", str(cfg), "--audiosocket-host", "fd00::5")
    assert rc == 0
    assert "AudioSocket(${VOXGATE_ID},[fd00::5]:9100)" in out
    assert check_asterisk_syntax(out) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "10.0.0.5:9092", "a,b", "x)"])
def test_bad_audiosocket_host(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "asterisk-config", "--audiosocket-host", host)
    assert rc == 2 and out == ""
    assert "--audiosocket-host" in err


def test_sections_one_at_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path)
    outputs = {}
    for section in ("dialplan", "ari", "http"):
        rc, out, _ = run(capsys, "asterisk-config", "--config", path, "--section", section)
        assert rc == 0
        assert check_asterisk_syntax(out) == []
        outputs[section] = out
    assert sections(outputs["dialplan"]) == ["voxgate", "voxgate-transfers"]
    assert sections(outputs["ari"]) == ["general", "asterisk"]
    assert sections(outputs["http"]) == ["general"]
    assert "bindport" in outputs["http"] and "bindport" not in outputs["ari"]


def test_ari_sections_need_ari(capsys: pytest.CaptureFixture[str]) -> None:
    for section in ("ari", "http"):
        rc, out, err = run(capsys, "asterisk-config", "--section", section)
        assert rc == 2 and out == ""
        assert "ARI is not configured" in err and "VOXGATE_ARI_URL" in err


def test_password_only_with_show_password(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, password="pa;ss")
    rc, out, _ = run(capsys, "asterisk-config", "--config", path, "--section", "ari", "--show-password")
    assert rc == 0
    assert "password = pa\\;ss\n" in out  # ';' would start a comment
    assert check_asterisk_syntax(out) == []
    rc, out, _ = run(capsys, "asterisk-config", "--config", path, "--section", "ari")
    assert "pa;ss" not in out and "password = CHANGE_ME" in out


def test_https_url_renders_only_enable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, url="https://pbx.example.com:8089")
    rc, out, err = run(capsys, "asterisk-config", "--config", path, "--section", "http")
    assert rc == 0
    assert "enabled = yes" in out and "bindport" not in out
    assert "TLS" in err
    assert check_asterisk_syntax(out) == []


def test_media_comments_follow_ari_media(tmp_path: Path) -> None:
    base = {"url": "http://10.0.0.1:8088", "username": "u", "password": "p", "media_host": "10.0.0.9"}
    for media, needle in (
        ("audiosocket", "encapsulation=audiosocket: Asterisk connects to 10.0.0.9:9092"),
        ("rtp", "RTP over UDP to 10.0.0.9"),
        ("websocket", "chan_websocket (20.16.0 / 21.11.0 / 22.6.0 / 23.0.0"),
    ):
        config = ServerConfig.model_validate({"ari": {**base, "media": media}})
        text = render(config, "dialplan").text
        assert needle in text
        assert check_asterisk_syntax(text) == []


def test_codec_mismatch_is_flagged() -> None:
    config = ServerConfig.model_validate({"audiosocket": {"listen": "10.0.0.5:9092", "codec": "ulaw"}})
    out = render(config, "dialplan")
    assert any("codec is ulaw" in w for w in out.warnings)
    assert "WARNING: audiosocket.codec is ulaw" in out.text


# --- AriConfig validation -----------------------------------------------------------------------


def test_ari_url_is_normalised_and_media_host_derived(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, url="http://127.0.0.1:8088/ari/"))
    assert config.ari is not None
    assert config.ari.url == "http://127.0.0.1:8088"
    assert config.ari.media_host == "10.0.0.5"  # from audiosocket.listen
    assert config.ari.app == "voxgate" and config.ari.media == "audiosocket"
    assert config.ari.subscribe_all is False
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.ari)


def test_media_host_required_on_wildcard_listen(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(tmp_path, listen="0.0.0.0:9092"))
    message = str(exc.value)
    assert "ari.media_host: required" in message
    assert "media_host: 10.0.0.5" in message  # says how to fix it
    # websocket media: voxgate dials Asterisk, so no address is needed
    config = load_config(write_config(tmp_path, listen="0.0.0.0:9092", extra="  media: websocket\n"))
    assert config.ari is not None and config.ari.media_host is None


@pytest.mark.parametrize(
    ("fields", "field", "hint"),
    [
        ({"url": "ftp://pbx"}, "ari.url", "http://"),
        ({"url": "http://pbx:99999"}, "ari.url", "port"),
        ({"username": "a b"}, "ari.username", "letters"),
        ({"username": "general"}, "ari.username", "general"),
        ({"app": "a,b"}, "ari.app", "Stasis"),
        ({"media_host": "10.0.0.5:9092"}, "ari.media_host", "only the host"),
        ({"media_host": "0.0.0.0"}, "ari.media_host", "Asterisk cannot connect"),
        ({"media": "sip"}, "ari.media", "audiosocket"),
        ({"reconnect_max_s": 0}, "ari.reconnect_max_s", "greater than 0"),
        ({"password": "line\nbreak"}, "ari.password", "control character"),
        ({"extra": 1}, "ari.extra", "unknown field"),
    ],
)
def test_validation_errors_name_the_field(fields: dict[str, object], field: str, hint: str) -> None:
    ari = {"url": "http://127.0.0.1:8088", "username": "u", "password": "secret-pw", "media_host": "h"}
    overrides = {f"ari.{k}": v for k, v in {**ari, **fields}.items()}
    with pytest.raises(ConfigError) as exc:
        load_config(None, overrides)
    line = next(ln for ln in str(exc.value).splitlines() if ln.strip().startswith(field + ":"))
    assert hint in line
    assert "secret-pw" not in str(exc.value)


def test_missing_fields_say_where_to_set_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXGATE_ARI_URL", "http://127.0.0.1:8088")
    with pytest.raises(ConfigError) as exc:
        load_config(None)
    message = str(exc.value)
    assert "ari.username: required" in message and "VOXGATE_ARI_USER" in message and "--ari-user" in message
    assert "ari.password: required" in message and "VOXGATE_ARI_PASSWORD" in message
    assert "ari.url" not in message


# --- precedence: flags > environment > file > defaults ------------------------------------------


def serve_config(*argv: str) -> ServerConfig | None:
    return _serve_config(_build_parser().parse_args(["serve", *argv]))


def test_env_overrides_file_and_flags_override_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, url="http://file:8088", user="fileuser", password="filepw", app="fileapp")
    config = serve_config("--config", path)
    assert config is not None and config.ari is not None
    assert (config.ari.url, config.ari.username, config.ari.password, config.ari.app) == (
        "http://file:8088",
        "fileuser",
        "filepw",
        "fileapp",
    )
    monkeypatch.setenv("VOXGATE_ARI_URL", "http://env:8088")
    monkeypatch.setenv("VOXGATE_ARI_USER", "envuser")
    monkeypatch.setenv("VOXGATE_ARI_PASSWORD", "envpw")
    monkeypatch.setenv("VOXGATE_ARI_APP", "envapp")
    config = serve_config("--config", path)
    assert config is not None and config.ari is not None
    assert (config.ari.url, config.ari.username, config.ari.password, config.ari.app) == (
        "http://env:8088",
        "envuser",
        "envpw",
        "envapp",
    )
    config = serve_config(
        "--config", path, "--ari-url", "http://flag:8088", "--ari-user", "flaguser", "--ari-app", "flagapp"
    )
    assert config is not None and config.ari is not None
    assert (config.ari.url, config.ari.username, config.ari.password, config.ari.app) == (
        "http://flag:8088",
        "flaguser",
        "envpw",
        "flagapp",
    )
    assert capsys.readouterr().err == ""  # no password flag, no warning
    config = serve_config("--config", path, "--ari-password", "flagpw")
    assert config is not None and config.ari is not None and config.ari.password == "flagpw"
    err = capsys.readouterr().err
    assert "warning" in err and "VOXGATE_ARI_PASSWORD" in err and "flagpw" not in err


def test_env_alone_enables_ari(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOXGATE_ARI_URL", "http://10.0.0.1:8088")
    monkeypatch.setenv("VOXGATE_ARI_USER", "envuser")
    monkeypatch.setenv("VOXGATE_ARI_PASSWORD", "envpw")
    monkeypatch.setenv("VOXGATE_ARI_APP", "fromenv")
    rc, _, err = run(capsys, "asterisk-config")
    assert rc == 2 and "ari.media_host: required" in err  # listen is 0.0.0.0: where should media go?
    cfg = tmp_path / "c.yaml"
    cfg.write_text("audiosocket: {listen: '10.0.0.7:9092'}\n")
    rc, out, _ = run(capsys, "asterisk-config", "--config", str(cfg))
    assert rc == 0
    assert "Stasis(fromenv)" in out and "[envuser]" in out and "bindaddr = 10.0.0.1" in out
    assert "envpw" not in out
    monkeypatch.setenv("VOXGATE_ARI_APP", "")  # empty counts as unset
    rc, out, _ = run(capsys, "asterisk-config", "--config", str(cfg), "--section", "dialplan")
    assert "Stasis(voxgate)" in out


def test_empty_ari_key_in_file_is_filled_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("audiosocket: {listen: '10.0.0.5:9092'}\nari:\n")
    monkeypatch.setenv("VOXGATE_ARI_URL", "http://127.0.0.1:8088")
    monkeypatch.setenv("VOXGATE_ARI_USER", "u")
    monkeypatch.setenv("VOXGATE_ARI_PASSWORD", "p")
    config = load_config(cfg)
    assert config.ari is not None and config.ari.username == "u"


def test_serve_rejects_bad_ari_flags_before_starting(capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = run(
        capsys, "serve", "--ari-url", "ftp://pbx", "--ari-user", "u", "--ari-password", "hunter2"
    )
    assert rc == 2
    assert "warning: --ari-password" in err
    assert "ari.url" in err and "hunter2" not in err


def test_help_lists_new_options(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, options in (
        (["serve", "--help"], ["--ari-url", "--ari-user", "--ari-password", "--ari-app"]),
        (["asterisk-config", "--help"], ["--config", "--audiosocket-host", "--section", "--show-password"]),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        for option in options:
            assert option in out


def test_outbound_amd_context_follows_the_config() -> None:
    base = {
        "url": "http://10.0.0.1:8088",
        "username": "u",
        "password": "p",
        "media_host": "10.0.0.9",
        "app": "bot",
    }
    plain = render(ServerConfig.model_validate({"ari": base}), "dialplan").text
    assert "[voxgate-outbound]" not in plain and "outbound.amd: true" in plain
    config = ServerConfig.model_validate({"ari": base, "outbound": {"amd": True, "amd_context": "amd-out"}})
    text = render(config, "dialplan").text
    assert "[amd-out]\nexten => s,1,AMD()\n same => n,Stasis(bot,outbound)\n same => n,Hangup()\n" in text
    assert check_asterisk_syntax(text) == []
