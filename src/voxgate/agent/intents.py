"""Intent matching and slot extraction for the offline flow agent, robust to STT errors.

Telephone speech (8 kHz) through a small Whisper model produces near-miss words ("building
question" for "billing question", "a point meant" for "appointment"), so matching works on
normalised tokens with fuzzy and phonetic similarity instead of exact keywords. Pure stdlib.

- `normalize(text)`: lowercase, expand contractions, strip punctuation, collapse spaces, number
  words to digits ("twenty five" → "25").
- `IntentMatcher(intents, threshold, margin)`: `match(utterance)` → `IntentMatch | None`. Each
  phrase scores by weighted recall of its content tokens in the utterance (a token's best fuzzy /
  phonetic similarity to an utterance token or a join of 2–3 adjacent ones) plus a little
  precision; an utterance made only of the intent's words (from several phrases, at least two)
  also scores, at most 0.8. Tokens under a negation ("do not", "never", "no") don't count for
  phrases that have no negation themselves. When the top two intents are within `margin`, the
  result is flagged `ambiguous` with the runner-up named.
- Slots: `extract_phone_number`, `extract_weekday` (→ `DayRef`), `extract_time` (→ `datetime.time`),
  `extract_yes_no` (→ `bool | None`).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache

__all__ = [
    "DayRef",
    "IntentMatch",
    "IntentMatcher",
    "extract_phone_number",
    "extract_time",
    "extract_weekday",
    "extract_yes_no",
    "normalize",
    "phonetic_key",
    "token_similarity",
]

# --------------------------------------------------------------------------------------------- text

_CONTRACTIONS = {
    "won't": "will not",
    "can't": "can not",
    "cannot": "can not",
    "shan't": "shall not",
    "ain't": "is not",
    "let's": "let us",
    "y'all": "you all",
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "got to",
    "o'clock": "oclock",
}
_SUFFIXES = (
    ("n't", " not"),
    ("'re", " are"),
    ("'m", " am"),
    ("'ll", " will"),
    ("'ve", " have"),
    ("'d", " would"),
    ("'s", " is"),
)

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14,
    "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}  # fmt: skip


def _expand_word(word: str) -> str:
    if word in _CONTRACTIONS:
        return _CONTRACTIONS[word]
    for suffix, repl in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return word[: -len(suffix)] + repl
    return word


def _words_to_numbers(tokens: list[str]) -> list[str]:
    """ "twenty five" → "25", "seven" → "7"; other tokens unchanged."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in _TENS:
            value = _TENS[t]
            if i + 1 < len(tokens) and tokens[i + 1] in _UNITS and 0 < _UNITS[tokens[i + 1]] < 10:
                value += _UNITS[tokens[i + 1]]
                i += 1
            out.append(str(value))
        elif t in _UNITS:
            out.append(str(_UNITS[t]))
        else:
            out.append(t)
        i += 1
    return out


def _tokens(text: str) -> list[str]:
    """Lowercased, contraction-expanded, punctuation-free word tokens (numbers as words kept)."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    text = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", text)
    text = re.sub(r"(\d)\s*([ap]m)\b", r"\1 \2", text)
    words = [_expand_word(w) for w in re.findall(r"[a-z0-9']+", text)]
    return [t for t in " ".join(words).replace("'", "").split() if t]


def normalize(text: str, numbers: bool = True) -> str:
    """Lowercase, expand contractions, strip punctuation, collapse spaces; number words → digits."""
    toks = _tokens(text)
    if numbers:
        toks = _words_to_numbers(toks)
    return " ".join(toks)


# ----------------------------------------------------------------------------------------- phonetic

_VOICED = str.maketrans({"b": "p", "d": "t", "g": "k", "v": "f", "z": "s", "q": "k", "j": "k"})


@lru_cache(maxsize=8192)
def phonetic_key(word: str) -> str:
    """A small Metaphone-like key: consonant skeleton, voicing merged, doubled letters collapsed.

    "billing" → "PLNK", "building" → "PLTNK", "appointment" → "APNTMNT". The first letter keeps
    its vowel so "a point" and "appoint" agree.
    """
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return word
    for a, b in (("tion", "xn"), ("sion", "xn"), ("ph", "f"), ("ck", "k"), ("gh", ""), ("sh", "x"),
                 ("ch", "x"), ("th", "0"), ("wh", "w"), ("kn", "n"), ("wr", "r"), ("x", "ks")):  # fmt: skip
        w = w.replace(a, b)
    w = re.sub(r"c(?=[eiy])", "s", w).replace("c", "k")
    first = w[0]
    body = re.sub(r"[aeiouyhw]", "", w[1:])
    key = (first if first in "aeiou" else first.translate(_VOICED)) + body.translate(_VOICED)
    key = re.sub(r"(.)\1+", r"\1", key)
    return key.upper()


def _stem(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


@lru_cache(maxsize=65536)
def token_similarity(a: str, b: str) -> float:
    """0..1 similarity of two tokens: exact, spelling (difflib) or sound (phonetic key)."""
    if a == b:
        return 1.0
    if min(len(a), len(b)) <= 3 or a.isdigit() or b.isdigit():
        return 0.0  # short words and numbers must match exactly ("hi"/"i")
    if _stem(a) == _stem(b):
        return 0.9  # "opening"/"open", "bills"/"bill", "closed"/"close"
    spell = SequenceMatcher(None, a, b).ratio()
    ka, kb = phonetic_key(a), phonetic_key(b)
    sound = 0.85 if ka == kb else 0.85 * SequenceMatcher(None, ka, kb).ratio()
    best = max(spell, sound)
    return best if best >= 0.75 else 0.0


# ------------------------------------------------------------------------------------------ intents

STOP_WORDS = frozenset(
    """a an the to of for and or is are am be been do does did can could would will shall should
    i me my mine we us our you your yours it its this that these those what which who how
    please um uh er erm hmm like just so well oh hi hello hey there here
    want wanted wanting need needs have has had get got going go with on in at about from by
    some any im ive id really actually maybe kind sort thanks thank okay ok""".split()
)
NEGATIONS = frozenset({"not", "no", "never", "nothing", "nobody", "neither", "nor", "without"})
_NEGATION_SCOPE = 3  # tokens after a negation word that it covers
_SCOPE_BREAKERS = frozenset({"but", "instead", "rather", "just", "only"})


def _content(tokens: list[str]) -> list[str]:
    kept = [t for t in tokens if t not in STOP_WORDS]
    return kept or tokens


def _negated_positions(tokens: list[str]) -> set[int]:
    neg: set[int] = set()
    for i, t in enumerate(tokens):
        if t in NEGATIONS and not (i == 0 and t == "no"):  # a leading "no" answers, not negates
            for j in range(i + 1, min(len(tokens), i + 1 + _NEGATION_SCOPE)):
                if tokens[j] in _SCOPE_BREAKERS:
                    break
                neg.add(j)
    return neg


@dataclass(frozen=True)
class IntentMatch:
    name: str
    score: float
    matched_phrase: str
    ambiguous: bool = False
    runner_up: str | None = None
    runner_up_score: float = 0.0


@dataclass
class _Phrase:
    intent: str
    text: str
    tokens: list[str]
    negated: bool = False
    weights: list[float] = field(default_factory=list)


class IntentMatcher:
    """Match an utterance to the best intent among named example phrases / keywords.

    `threshold`: minimum score (0..1) to report a match. `margin`: if the runner-up intent
    scores within this of the best, the match is flagged `ambiguous` (the caller decides whether
    to ask a clarifying question).
    """

    def __init__(self, intents: dict[str, list[str]], threshold: float = 0.6, margin: float = 0.08):
        if not intents:
            raise ValueError("at least one intent is required")
        self.threshold = threshold
        self.margin = margin
        self._phrases: list[_Phrase] = []
        for name, examples in intents.items():
            if not examples:
                raise ValueError(f"intent {name!r} has no example phrases")
            for ex in examples:
                toks = normalize(ex, numbers=False).split()
                if not toks:
                    raise ValueError(f"intent {name!r} has an empty phrase {ex!r}")
                self._phrases.append(
                    _Phrase(name, ex, _content(toks), negated=any(t in NEGATIONS for t in toks))
                )
        # Words shared by many intents say little about which one is meant: weight by idf.
        n = len(intents)
        df: dict[str, set[str]] = {}
        for p in self._phrases:
            for t in p.tokens:
                df.setdefault(t, set()).add(p.intent)
        for p in self._phrases:
            p.weights = [math.log(1.0 + n / len(df[t])) * (0.5 + min(len(t), 8) / 8) for t in p.tokens]
        # Each intent's whole vocabulary, for utterances that mix words from several of its phrases.
        self._vocab: dict[str, set[str]] = {}
        for p in self._phrases:
            if not p.negated:
                self._vocab.setdefault(p.intent, set()).update(t for t in p.tokens if t not in STOP_WORDS)

    def scores(self, utterance: str) -> dict[str, tuple[float, str]]:
        """Best (score, phrase) per intent."""
        toks = normalize(utterance, numbers=False).split()
        best: dict[str, tuple[float, str]] = {}
        if not toks:
            return best
        negated = _negated_positions(toks)
        content_idx = [i for i, t in enumerate(toks) if t not in STOP_WORDS and t not in NEGATIONS]
        # Candidates: each token and joins of 2-3 adjacent tokens ("a point meant" → "apointmeant").
        cands: list[tuple[str, tuple[int, ...]]] = [(t, (i,)) for i, t in enumerate(toks)]
        for k in (2, 3):
            for i in range(len(toks) - k + 1):
                cands.append(("".join(toks[i : i + k]), tuple(range(i, i + k))))
        for p in self._phrases:
            covered: set[int] = set()
            got = 0.0
            for tok, w in zip(p.tokens, p.weights, strict=True):
                sim, where = 0.0, ()
                for cand, pos in cands:
                    s = token_similarity(tok, cand)
                    if len(pos) > 1:
                        s *= 0.95
                    if s > 0 and not p.negated and any(j in negated for j in pos):
                        s = 0.0
                    if s > sim:
                        sim, where = s, pos
                got += w * sim
                covered.update(where)
            recall = got / sum(p.weights)
            precision = sum(1 for i in content_idx if i in covered) / len(content_idx) if content_idx else 1.0
            score = 0.85 * recall + 0.15 * precision if recall > 0 else 0.0
            if score > best.get(p.intent, (-1.0, ""))[0]:
                best[p.intent] = (score, p.text)
        # Vocabulary score: every content word of the utterance is one of the intent's words, and at
        # least two of them are ("what's the opening time" = "opening hours" + "what time ...").
        if len(content_idx) >= 2:
            for intent, vocab in self._vocab.items():
                sims = [
                    0.0 if i in negated else max((token_similarity(v, toks[i]) for v in vocab), default=0.0)
                    for i in content_idx
                ]
                if sum(1 for x in sims if x > 0) >= 2:
                    score = 0.8 * sum(sims) / len(sims)
                    if score > best.get(intent, (-1.0, ""))[0]:
                        best[intent] = (score, best[intent][1])
        return best

    def match(self, utterance: str) -> IntentMatch | None:
        ranked = sorted(self.scores(utterance).items(), key=lambda kv: kv[1][0], reverse=True)
        if not ranked or ranked[0][1][0] < self.threshold:
            return None
        name, (score, phrase) = ranked[0]
        if len(ranked) > 1 and score - ranked[1][1][0] < self.margin:
            second, (s2, _) = ranked[1]
            return IntentMatch(name, round(score, 4), phrase, True, second, round(s2, 4))
        return IntentMatch(name, round(score, 4), phrase)


# -------------------------------------------------------------------------------------------- phone

_PHONE_DIGITS = {**{k: v for k, v in _UNITS.items() if v < 10}, "oh": 0, "o": 0, "nought": 0, "naught": 0}
_PHONE_FILLERS = frozenset({"dash", "hyphen", "uh", "um", "er", "erm", "and", "then", "space", "dot"})
_REPEAT = {"double": 2, "triple": 3}


def _phone_runs(tokens: list[str]) -> list[str]:
    runs: list[str] = []
    cur: list[str] = []
    words_in_cur = 0
    pending = 1  # multiplier from "double"/"triple"

    def close() -> None:
        nonlocal cur, words_in_cur
        s = "".join(cur)
        if s:
            runs.append(s)
        cur, words_in_cur = [], 0

    i = 0
    while i < len(tokens):
        t = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
        if t.isdigit():
            cur.append(t * pending if len(t) == 1 else t)
            pending = 1
        elif t in _REPEAT and (nxt in _PHONE_DIGITS or (nxt.isdigit() and len(nxt) == 1)):
            pending = _REPEAT[t]
        elif t in _TENS:
            v = _TENS[t]
            if nxt in _UNITS and 0 < _UNITS[nxt] < 10:
                v += _UNITS[nxt]
                i += 1
            cur.append(str(v))
        elif t in _UNITS and _UNITS[t] >= 10:
            cur.append(str(_UNITS[t]))
        elif t in ("hundred", "thousand") and cur and cur[-1].isdigit():
            cur[-1] += "00" if t == "hundred" else "000"
        elif t in _PHONE_DIGITS and (t not in ("oh", "o") or cur or nxt in _PHONE_DIGITS or nxt.isdigit()):
            cur.append(str(_PHONE_DIGITS[t]) * pending)
            words_in_cur += 1
            pending = 1
        elif t in _PHONE_FILLERS and cur:
            pass
        elif t == "plus" and not cur:
            pass
        else:
            close()
            pending = 1
        i += 1
    close()
    return runs


def extract_phone_number(text: str, min_len: int = 7, max_len: int = 15) -> str | None:
    """Digits of a phone number spoken or typed in `text`, or None.

    Handles digits as words ("five five five one two three four"), "oh"/"o" as zero, "double
    five", "triple oh", pairs and tens ("twelve thirty four"), "eight hundred", digit strings with
    separators ("555-123-4567", "(555) 123 4567") and mixes. Returns the longest run of
    `min_len`..`max_len` digits, preferring the last one said.
    """
    text = re.sub(r"(?<=\d)[\s().\-]+(?=[\d(])", "", text)  # "555-123 4567" → one token
    text = re.sub(r"\((?=\d)", "", text)
    runs = _phone_runs(_tokens(text))
    valid = [r for r in runs if min_len <= len(r) <= max_len]
    if not valid:
        joined = "".join(runs)  # a number said in pieces with words in between
        return joined if min_len <= len(joined) <= max_len and len(runs) <= 3 else None
    return max(reversed(valid), key=len)


# ------------------------------------------------------------------------------------------ weekday

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_VARIANTS = {"wensday": 2, "wednes": 2, "tues": 1, "thurs": 3, "weds": 2, "mon": 0, "fri": 4,
                     "sat": 5, "sun": 6}  # fmt: skip


@dataclass(frozen=True)
class DayRef:
    """A day the caller named: `weekday` (0 = Monday) and, resolved against today, `date`."""

    weekday: int
    date: dt.date
    text: str

    @property
    def name(self) -> str:
        return WEEKDAYS[self.weekday]


def _fuzzy_weekday(word: str) -> int | None:
    if word in WEEKDAYS:
        return WEEKDAYS.index(word)
    if len(word) < 5 or not word.endswith(("day", "dey", "dai", "die")):
        return None
    best, idx = 0.0, None
    for i, name in enumerate(WEEKDAYS):
        s = max(SequenceMatcher(None, word, name).ratio(), 0.95 * (phonetic_key(word) == phonetic_key(name)))
        if s > best:
            best, idx = s, i
    return idx if best >= 0.8 else None


def extract_weekday(text: str, today: dt.date | None = None) -> DayRef | None:
    """The day named in `text`: a weekday (also STT near-misses like "wensday", "fry day"),
    "today", "tomorrow", "the day after tomorrow", "this/next <weekday>".

    A bare weekday resolves to its next occurrence on or after `today` (default: the real date);
    "next <weekday>" to the first one strictly after today.
    """
    today = today or dt.date.today()
    toks = _tokens(text)
    joined = " ".join(toks)
    if "day after tomorrow" in joined:
        d = today + dt.timedelta(days=2)
        return DayRef(d.weekday(), d, "day after tomorrow")
    for i, t in enumerate(toks):
        if t in ("today", "tonight"):
            return DayRef(today.weekday(), today, t)
        if t in ("tomorrow", "tmrw", "tomorow"):
            d = today + dt.timedelta(days=1)
            return DayRef(d.weekday(), d, t)
        day = _WEEKDAY_VARIANTS.get(t) if t not in ("sun", "sat", "mon") else None
        said = t
        if day is None:
            day = _fuzzy_weekday(t)
        if day is None and i + 1 < len(toks) and toks[i + 1] in ("day", "days"):
            said = t + " " + toks[i + 1]
            day = _fuzzy_weekday(t + "day") if len(t) >= 2 else None
        if day is None:
            continue
        nxt = i > 0 and toks[i - 1] in ("next", "following")
        delta = (day - today.weekday()) % 7
        if delta == 0 and nxt:
            delta = 7
        d = today + dt.timedelta(days=delta)
        return DayRef(day, d, said)
    return None


# --------------------------------------------------------------------------------------------- time

_PM_WORDS = frozenset({"pm", "afternoon", "evening", "tonight", "night"})
_AM_WORDS = frozenset({"am", "morning"})


def _num(tok: str) -> int | None:
    return int(tok) if tok.isdigit() else None


def extract_time(text: str) -> dt.time | None:
    """A clock time in `text`: "10:30", "ten thirty", "3 pm", "three p.m.", "noon", "midnight",
    "half past two", "quarter to four", "twenty past six", "five o'clock", "at 4 in the
    afternoon", "ten oh five". A bare "at N" keeps N as said (no am/pm guess) for 1..12.
    """
    low = text.lower()
    m = re.search(r"\b(\d{1,2})[:.](\d{2})\b", low)
    toks = _words_to_numbers(_tokens(re.sub(r"\b(\d{1,2})[:.](\d{2})\b", r"\1 \2", low)))
    toks = [t for t in toks if t not in ("uh", "um", "er", "about", "around", "like")]
    meridiem = None
    if any(t in _PM_WORDS for t in toks):
        meridiem = "pm"
    elif any(t in _AM_WORDS for t in toks):
        meridiem = "am"

    def make(h: int, mi: int) -> dt.time | None:
        if meridiem == "pm" and 1 <= h < 12:
            h += 12
        elif meridiem == "am" and h == 12:
            h = 0
        if 0 <= h <= 23 and 0 <= mi <= 59:
            return dt.time(h, mi)
        return None

    if "noon" in toks or "midday" in toks:
        return dt.time(12, 0)
    if "midnight" in toks:
        return dt.time(0, 0)
    if m:
        return make(int(m.group(1)), int(m.group(2)))
    for i, t in enumerate(toks):
        prev = toks[i - 1] if i > 0 else ""
        nxt = toks[i + 1] if i + 1 < len(toks) else ""
        nxt2 = toks[i + 2] if i + 2 < len(toks) else ""
        # half past two / quarter to four / twenty past six
        if nxt in ("past", "after", "to", "til", "till", "before") and _num(nxt2) is not None:
            mins = 30 if t == "half" else 15 if t == "quarter" else _num(t)
            if mins is not None and 0 < mins < 60 and 1 <= int(nxt2) <= 12:
                h = int(nxt2)
                if nxt in ("past", "after"):
                    return make(h, mins)
                return make(h - 1 if h > 1 else 12, 60 - mins)
        n = _num(t)
        if n is None:
            continue
        if nxt == "oclock":
            return make(n, 0)
        # ten thirty / ten oh five / 3 45 pm
        if 1 <= n <= 12 and _num(nxt) is not None and 10 <= int(nxt) <= 59:
            return make(n, int(nxt))
        if 1 <= n <= 12 and nxt in ("oh", "o") and _num(nxt2) is not None and int(nxt2) < 10:
            return make(n, int(nxt2))
        if 0 <= n <= 12 and (nxt in ("am", "pm") or (nxt in ("in", "this") and meridiem)):
            return make(n, 0)
        if 1 <= n <= 12 and prev in ("at", "by", "after", "before", "til", "until"):
            return make(n, 0)
    return None


# ------------------------------------------------------------------------------------------ yes/no

_YES_WORDS = frozenset({"yes", "yeah", "yea", "yep", "yup", "ya", "yah", "sure", "correct", "right",
                        "absolutely", "definitely", "certainly", "okay", "ok", "affirmative", "exactly",
                        "alright", "mhm", "uhhuh", "indeed", "perfect", "great", "fine"})  # fmt: skip
_NO_WORDS = frozenset({"no", "nope", "nah", "negative", "wrong", "incorrect", "never"})
_YES_PHRASES = ("of course", "uh huh", "sounds good", "go ahead", "please do", "that works", "i think so",
                "no problem", "no worries", "why not", "i do", "that would be great")  # fmt: skip
_NO_PHRASES = ("not really", "i do not think so", "do not think so", "i do not", "do not", "no thanks",
               "no thank you", "not at all", "i would rather not", "rather not", "not now")  # fmt: skip
_UNSURE_PHRASES = ("not sure", "do not know", "maybe", "i guess", "possibly", "not certain")
_CORRECTIONS = frozenset({"wait", "actually", "sorry", "mean", "rather"})


def extract_yes_no(text: str) -> bool | None:
    """True for yes ("yeah", "sure", "that's right", "of course"), False for no ("nope", "not
    really", "that's wrong", "no I don't want that", "absolutely not"), None when unclear ("I'm
    not sure", "maybe", mixed answers without a correction, or nothing yes/no-like).

    A negation flips a following yes word ("not right", "not correct"), a trailing "not" flips a
    preceding one ("definitely not"). With both, a correction word ("wait", "actually", "I mean")
    lets the last answer win, and "yeah no" reads as no.
    """
    toks = _tokens(text)
    s = " " + " ".join(toks) + " "
    if not toks:
        return None
    # (position, value) signals, phrases first; phrase words are blanked so they don't count twice.
    signals: list[tuple[int, bool]] = []
    for phrases, value in ((_UNSURE_PHRASES, None), (_YES_PHRASES, True), (_NO_PHRASES, False)):
        for ph in phrases:
            for m in re.finditer(rf" {re.escape(ph)}(?= )", s):
                if value is None:
                    return None
                if value is True and ph in ("i do",) and s[m.end() :].startswith(" not"):
                    continue
                signals.append((m.start(), value))
                s = s[: m.start()] + " " + "_" * (m.end() - m.start() - 1) + s[m.end() :]
    words = s.split(" ")
    pos = 0
    for i, w in enumerate(words):
        if w in _YES_WORDS:
            prev = words[i - 1] if i > 0 else ""
            prev2 = words[i - 2] if i > 1 else ""
            nxt = words[i + 1] if i + 1 < len(words) else ""
            neg = prev == "not" or prev2 == "not" or (nxt == "not" and w != "right")
            signals.append((pos, not neg))
        elif w in _NO_WORDS or (w == "not" and i + 1 < len(words) and words[i + 1] == ""):
            signals.append((pos, False))
        pos += len(w) + 1
    if not signals:
        return None
    signals.sort()
    values = [v for _, v in signals]
    if all(values):
        return True
    if not any(values):
        return False
    if len(values) == 2 and values == [True, False] and toks[0] in ("yeah", "yea", "yes") and toks[1] == "no":
        return False  # "yeah no" idiom
    if any(t in _CORRECTIONS for t in toks):
        return values[-1]
    return None
