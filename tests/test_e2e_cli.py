"""End to end through the CLI: `voxgate serve --agent echo` and `voxgate call` as real processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

_SCRIPT = Path(sys.executable).with_name("voxgate")
VOXGATE = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "voxgate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VOXGATE, *args], capture_output=True, text=True, timeout=timeout)


class Served:
    def __init__(self, proc: subprocess.Popen[str], audiosocket: str, http: str) -> None:
        self.proc = proc
        self.audiosocket = audiosocket
        self.http = http


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    a_port, h_port = free_port(), free_port()
    audiosocket, http = f"127.0.0.1:{a_port}", f"127.0.0.1:{h_port}"
    proc = subprocess.Popen(
        [*VOXGATE, "serve", "--agent", "echo", "--audiosocket", audiosocket, "--http", http],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 15
    while True:
        assert proc.poll() is None, f"voxgate serve exited early:\n{proc.communicate()[0]}"
        try:
            with urllib.request.urlopen(f"http://{http}/health", timeout=1) as resp:
                if resp.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError):
            pass
        assert time.monotonic() < deadline, "voxgate serve did not answer /health within 15 s"
        time.sleep(0.05)
    yield Served(proc, audiosocket, http)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, f"voxgate serve exited {proc.returncode} on SIGTERM:\n{out}"


def make_signal(rate: int, seconds: float = 2.0) -> np.ndarray:
    """A 1.5 s chirp 200 Hz → 3 kHz, then a 0.5 s noise burst (no DTMF-like tones held)."""
    n_chirp = int(1.5 * rate)
    t = np.arange(n_chirp) / rate
    f0, f1 = 200.0, 3000.0
    chirp = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) / (2 * 1.5) * t**2))
    burst = 0.3 * np.random.default_rng(7).standard_normal(int(seconds * rate) - n_chirp)
    return np.clip(np.concatenate([chirp, burst]) * 32767, -32768, 32767).astype("<i2")


def write_wav(path: Path, pcm: np.ndarray, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype("<i2").tobytes())


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2"), w.getframerate()


def best_lag(x: np.ndarray, y: np.ndarray, max_lag: int) -> tuple[int, float]:
    """Lag (samples) of `x` inside `y` with the highest normalised correlation, and that correlation."""
    x = x.astype(np.float64)
    y = np.concatenate([y.astype(np.float64), np.zeros(len(x) + max_lag)])
    ex = float(x @ x)
    best = (0, -1.0)
    for lag in range(max_lag + 1):
        seg = y[lag : lag + len(x)]
        denom = np.sqrt(ex * float(seg @ seg))
        corr = float(x @ seg) / denom if denom else 0.0
        if corr > best[1]:
            best = (lag, corr)
    return best


def clock_trouble(http: str) -> float:
    """The server's media-clock trouble so far: late ticks plus skipped 20 ms slots."""
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=2) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name in ("voxgate_clock_late_ticks", "voxgate_clock_missed_slots"):
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


@pytest.mark.parametrize("rate", [8000, 16000])
def test_echo_call_round_trip(served: Served, tmp_path: Path, rate: int) -> None:
    pcm = make_signal(rate)
    src, dst = tmp_path / "in.wav", tmp_path / "out.wav"
    write_wav(src, pcm, rate)
    trouble_before = clock_trouble(served.http)
    proc = run(
        *("call", "--audiosocket", served.audiosocket, "--play", str(src), "--record", str(dst)),
        *("--rate", str(rate), "--tail", "0.5", "--json"),
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ended_by"] == "caller"
    assert summary["error"] is None
    assert ("0x10" if rate == 8000 else "0x12") in summary["received_kinds"]

    rec, rec_rate = read_wav(dst)
    assert rec_rate == rate
    lag, corr = best_lag(pcm, rec, max_lag=rate // 5)
    lag_ms = lag * 1000 / rate
    # When this fails, say whether the server's clock was starved (a loaded machine) or not.
    trouble = clock_trouble(served.http) - trouble_before
    detail = f"{summary}; server clock late ticks + missed slots during the call: {trouble:.0f}"
    assert corr > 0.95, f"best correlation {corr:.3f} at {lag_ms:.1f} ms; {detail}"
    assert 10 <= lag_ms <= 80, f"echo found {lag_ms:.1f} ms after the input ({corr=:.3f}); {detail}"
    assert summary["frames_sent"] >= 2.4 / 0.02, detail
    assert summary["max_interarrival_ms"] < 60, detail


@pytest.mark.parametrize("args", [[], ["serve"], ["call"]], ids=["top", "serve", "call"])
def test_help_exits_zero(args: list[str]) -> None:
    proc = run(*args, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: voxgate" in proc.stdout


def test_serve_bad_config_names_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("agent: echo\naudiosocket:\n  listen: 127.0.0.1:0\n  max_cals: 3\n")
    proc = run("serve", "--config", str(bad), timeout=10)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "audiosocket.max_cals" in proc.stderr
    assert "unknown field" in proc.stderr


def test_serve_missing_env_in_config_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "env.yaml"
    cfg.write_text("http:\n  listen: ${VOXGATE_TEST_UNSET_VAR}\n")
    env = {k: v for k, v in os.environ.items() if k != "VOXGATE_TEST_UNSET_VAR"}
    proc = subprocess.run(
        [*VOXGATE, "serve", "--config", str(cfg)], capture_output=True, text=True, timeout=10, env=env
    )
    assert proc.returncode == 2
    assert "VOXGATE_TEST_UNSET_VAR" in proc.stderr
