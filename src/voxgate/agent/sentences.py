"""Cut streamed LLM text into sentences for TTS, each as soon as it is complete.

`SentenceSplitter.push(delta)` returns the sentences the new text completed; `flush()` returns
the rest at the end of the reply. A sentence ends at `.`, `!`, `?` or `…` (plus any closing
quotes, brackets or markdown emphasis) followed by whitespace, or at a line break. Whitespace
after the mark is required, so "3.5", "10:30", "e.g.," and URLs never end a sentence, and a mark
at the very end of the text so far waits for the next delta (or `flush()`) to decide.

Not sentence ends:
- titles and Latin abbreviations ("Dr.", "Mr.", "St.", "e.g.", "i.e.", "vs.", "approx.") and
  initials ("J. Smith");
- "No." / "ext." / "p." and the like when a number follows ("call ext. 204");
- "etc.", "a.m.", "p.m.", "Inc.", "U.S." and other dotted acronyms unless the next word is
  capitalised ("at 5 p.m. tomorrow" vs "at 5 p.m. Then…");
- an ellipsis ("..." or "…") unless the next word is capitalised;
- a list marker ("1. ") that starts a line.

`min_chars` keeps tiny sentences ("Hi.", "Sure!") from going to TTS alone: a sentence shorter
than that is held and sent together with the next one, unless it is the whole reply (`flush()`
sends whatever is left). `max_chars` bounds how long a run-on sentence can hold the first audio
back: past it, the text is cut at the last clause break (", ", "; ", ": ", " - ") or, failing
that, the last space.

`for_speech()` strips markdown conservatively for TTS: emphasis markers, inline code backticks
and code fences, heading `#`s and list bullets at line starts, `>` quotes, and links
(`[text](url)` → text). A `#` or `*` inside a sentence ("press #", "5 * 3") is kept.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

TERMINATORS = ".!?…"
CLOSERS = "\"'”’»)]}*_`"
_CANDIDATE = re.compile(r"[.!?…\n]")

NEVER_END = frozenset(
    "mr mrs ms mx dr prof rev fr sra srta st mt hon gen col lt capt cpt sgt maj cmdr adm gov pres "
    "supt insp det e.g eg i.e ie vs cf viz approx ca".split()
)
"""Words that are not the end of a sentence when followed by a dot (lowercase, inner dots kept)."""

BEFORE_NUMBER = frozenset("no nos nr tel ext ph fig figs vol p pp ch sec art rm ste ave apt".split())
"""Abbreviations that do not end a sentence when a number follows ("No. 5", "ext. 204")."""

UNLESS_CAPITAL = frozenset(
    "etc a.m am p.m pm inc ltd co corp jr sr llc plc bros ft dept est misc appt".split()
)
"""Abbreviations that end a sentence only if the next word is capitalised."""

_ACRONYM = re.compile(r"^(?:[A-Za-z]\.)+[A-Za-z]$")  # "U.S" (the final dot is the candidate)
_LIST_MARKER = re.compile(r"^(?:\d{1,3}|[A-Za-z])$")
_OPENERS = "\"'“‘«([{*_`"
_CLAUSE = re.compile(r"[,;:](?=\s)|\s[-–—](?=\s)")


class SentenceSplitter:
    """Streamed text in, sentences out (stripped of surrounding whitespace)."""

    def __init__(self, *, min_chars: int = 12, max_chars: int | None = 250) -> None:
        if min_chars < 0:
            raise ValueError("min_chars must be >= 0")
        if max_chars is not None and max_chars <= min_chars:
            raise ValueError("max_chars must be larger than min_chars")
        self.min_chars = min_chars
        self.max_chars = max_chars
        self._buf = ""
        self._scan = 0  # where to look for the next candidate in _buf
        self._held = ""  # complete sentences too short to send alone
        self._line_start = True  # _buf starts a line (for "1. " list markers)

    def push(self, text: str) -> list[str]:
        """Add a delta; the sentences it completed (possibly none)."""
        if not text:
            return []
        self._buf += text
        out: list[str] = []
        buf = self._buf
        pos = self._scan
        while (match := _CANDIDATE.search(buf, pos)) is not None:
            i = match.start()
            if buf[i] == "\n":
                if self.max_chars is not None and i > self.max_chars:
                    buf = buf[self._cut(buf, out) :]
                    pos = 0
                    continue
                self._emit(buf[:i], out)
                buf = buf[i + 1 :]
                pos = 0
                self._line_start = True
                continue
            end = self._sentence_end(buf, i)
            if end is None:  # undecided until more text comes
                pos = i
                break
            if end < 0:  # not an end: go on after the marks
                pos = -end
                continue
            if self.max_chars is not None and end > self.max_chars:  # cut a run-on sentence first
                buf = buf[self._cut(buf, out) :]
                pos = 0
                continue
            self._emit(buf[:end], out)
            buf = buf[end:]
            pos = 0
            self._line_start = False
        else:
            pos = len(buf)
        if self.max_chars is not None:  # (not while a mark within max_chars is still undecided)
            while len(buf) > self.max_chars and pos > self.max_chars:
                cut = self._cut(buf, out)
                buf = buf[cut:]
                pos = max(0, pos - cut)
        self._buf = buf
        self._scan = pos
        return out

    def flush(self) -> list[str]:
        """End of the reply: everything not sent yet (held short sentences included)."""
        rest = self._buf.strip()
        held, self._held = self._held, ""
        self._buf, self._scan, self._line_start = "", 0, True
        text = f"{held} {rest}" if held and rest else held or rest
        return [text] if text else []

    # -- internals --

    def _emit(self, sentence: str, out: list[str]) -> None:
        sentence = sentence.strip()
        if not sentence:
            return
        if self._held:
            sentence = f"{self._held} {sentence}"
        if len(sentence) < self.min_chars:
            self._held = sentence
        else:
            self._held = ""
            out.append(sentence)

    def _sentence_end(self, buf: str, i: int) -> int | None:
        """For the mark at `i`: the index the sentence ends at, -(index to go on from) if this is
        not an end, or None if the text so far cannot tell."""
        n = len(buf)
        j = i
        while j < n and buf[j] in TERMINATORS:
            j += 1
        k = j
        while k < n and buf[k] in CLOSERS:
            k += 1
        if k == n:
            return None
        if not buf[k].isspace():
            return -k  # "3.5", "e.g.,", "example.com", "?!x"
        if buf[k] == "\n":
            return k
        marks = buf[i:j]
        if "!" in marks or "?" in marks:
            return k
        m = k
        while m < n and buf[m] in " \t":
            m += 1
        following = buf[m] if m < n else ""
        while following and following in _OPENERS and m + 1 < n:
            m += 1
            following = buf[m]
        ellipsis = "…" in marks or len(marks) > 1
        start = buf.rfind(" ", 0, i) + 1
        start = max(start, buf.rfind("\n", 0, i) + 1, buf.rfind("\t", 0, i) + 1)
        word = buf[start:i].lstrip(_OPENERS)
        lower = word.lower()
        if lower in NEVER_END:
            return -k
        if ellipsis or lower in UNLESS_CAPITAL or (len(word) > 2 and _ACRONYM.match(word)):
            if not following or following in _OPENERS:
                return None
            return k if following.isupper() else -k
        if len(word) == 1 and word.isupper():  # an initial: "J. Smith"
            return -k
        if lower in BEFORE_NUMBER:
            if not following:
                return None
            return -k if following.isdigit() else k
        if _LIST_MARKER.match(word) and self._line_start and not buf[:start].strip():  # "1. " opens a line
            return -k
        return k

    def _cut(self, buf: str, out: list[str]) -> int:
        """Emit the head of a sentence that grew past max_chars; how many characters it took."""
        cut = self._cut_point(buf)
        self._emit(buf[:cut], out)
        self._line_start = False
        return cut

    def _cut_point(self, buf: str) -> int:
        """Where to cut a sentence that grew past max_chars: after the last clause break."""
        limit = self.max_chars or len(buf)
        best = -1
        for match in _CLAUSE.finditer(buf, 0, limit):
            best = match.end()
        if best > max(self.min_chars, 0):
            return best
        space = buf.rfind(" ", 0, limit)
        return space if space > 0 else limit


async def sentences(
    deltas: AsyncIterator[str], *, min_chars: int = 12, max_chars: int | None = 250, speech: bool = False
) -> AsyncIterator[str]:
    """Sentences from a stream of text deltas, each as soon as it is complete; the rest at the end.

    With `speech=True` each sentence goes through `for_speech()` (and empty results are dropped).
    """
    splitter = SentenceSplitter(min_chars=min_chars, max_chars=max_chars)
    async for delta in deltas:
        for sentence in splitter.push(delta):
            if not speech:
                yield sentence
            elif text := for_speech(sentence):
                yield text
    for sentence in splitter.flush():
        if not speech:
            yield sentence
        elif text := for_speech(sentence):
            yield text


# --- markdown → speech ------------------------------------------------------------------------

_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]+)\]\((?:[^()\s]|\([^()\s]*\))+\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto|tel):[^>\s]+)>")
_FENCE = re.compile(r"^\s*(?:```|~~~)[\w+-]*\s*$", re.MULTILINE)
_INLINE_CODE = re.compile(r"`+([^`]*)`+")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.MULTILINE)
_BULLET = re.compile(r"^[ \t]*[-*+•][ \t]+", re.MULTILINE)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.MULTILINE)
_RULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.MULTILINE)
_LEFTOVER = re.compile(r"\*{2,}|_{2,}|`+|~{2,}")  # emphasis whose other half is in another sentence
_SPACES = re.compile(r"\s+")


def for_speech(text: str) -> str:
    """`text` with markdown markup removed, for a TTS voice to read. Conservative: only markup."""
    if not any(c in text for c in "*_`#[]<>~-+•\n"):
        return text.strip()
    text = _FENCE.sub("", text)
    text = _RULE.sub("", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(r"\1", text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _HEADING.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BULLET.sub("", text)
    text = _BOLD.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _STAR.sub(r"\1", text)
    text = _UNDERSCORE.sub(r"\1", text)
    text = _LEFTOVER.sub("", text)
    return _SPACES.sub(" ", text).strip()
