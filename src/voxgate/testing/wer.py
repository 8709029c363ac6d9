"""Word error rate for checking transcripts: (substitutions + deletions + insertions) / reference words.

Both texts are normalised first: lower case, punctuation dropped (apostrophes inside words kept),
hyphens split words, whitespace collapsed. Numbers are not spelled out: say "twenty" in a test
sentence, or expect the digits.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def words(text: str) -> list[str]:
    """The normalised words of `text`."""
    return _WORD.findall(text.lower().replace("’", "'"))


def word_errors(reference: str, hypothesis: str) -> int:
    """Minimum substitutions + deletions + insertions turning the reference words into the hypothesis."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """WER of `hypothesis` against `reference` (0.0 is perfect; can exceed 1.0 with insertions)."""
    n = len(words(reference))
    if n == 0:
        return 0.0 if not words(hypothesis) else float("inf")
    return word_errors(reference, hypothesis) / n
