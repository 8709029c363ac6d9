"""An incremental Server-Sent Events decoder: bytes in, whatever TCP delivered; `data` payloads out.

Follows the SSE rules that matter for LLM streams: lines end in LF, CRLF or a lone CR (a CR at
the end of one read may be the first half of a CRLF split across reads); `data:` lines of one
event are joined with LF and the event is dispatched at the blank line that ends it; a single
space after the colon is dropped; lines starting with `:` are comments (keep-alives) and other
fields (`event`, `id`, `retry`) are ignored. Payloads stay bytes: `json.loads` takes them as is.
"""

from __future__ import annotations

_CR = 0x0D
MAX_LINE = 4 << 20
"""Bytes one line may hold: a server that never ends a line is cut off, not buffered forever."""


class SSEDecoder:
    """Feed raw bytes with `feed()`, get the complete events' data payloads, in order."""

    __slots__ = ("_buf", "_data")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[bytes] = []  # data lines of the event being read

    def feed(self, chunk: bytes) -> list[bytes]:
        buf = self._buf + chunk if self._buf else chunk
        if b"\r" not in buf:
            lines, self._buf = self._split(buf)
            return self._events(lines)
        cr_last = buf[-1] == _CR  # maybe the first half of a CRLF: hold it for the next read
        buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if cr_last:
            buf = buf[:-1]
        lines, rest = self._split(buf)
        self._buf = rest + b"\r" if cr_last else rest
        return self._events(lines)

    def _check(self) -> None:
        if len(self._buf) > MAX_LINE:
            raise ValueError(f"an SSE line longer than {MAX_LINE} bytes: not an event stream?")

    @staticmethod
    def _split(buf: bytes) -> tuple[bytes, bytes]:
        """(complete lines, the unfinished last line)."""
        end = buf.rfind(b"\n")
        if end < 0:
            return b"", buf
        return buf[: end + 1], buf[end + 1 :]

    def _events(self, lines: bytes) -> list[bytes]:
        if not lines:
            self._check()
            return []
        out: list[bytes] = []
        data = self._data
        for line in lines.split(b"\n")[:-1]:
            if not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            # ':' comments / keep-alives, 'event:', 'id:', 'retry:' and unknown fields: ignored
        return out

    def close(self) -> tuple[list[bytes], bytes | None]:
        """At end of stream: (events its end completed, data of an event left without its blank line).

        A CR held back as a possible half of a CRLF ends its line here. The SSE rules discard an
        unterminated event; it is returned apart so callers may still accept a lone `[DONE]` from
        servers that end without the final blank line.
        """
        buf, self._buf = self._buf, b""
        events = self._events(buf[:-1] + b"\n") if buf.endswith(b"\r") else []
        if not buf.endswith(b"\r") and buf.startswith(b"data:"):
            self._data.append(buf[6:] if buf[5:6] == b" " else buf[5:])
        data, self._data = self._data, []
        return events, (b"\n".join(data) if data else None)
