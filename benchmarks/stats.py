"""Summaries the benchmarks print and write: percentiles and extremes of a list of samples."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def summary(
    values: Iterable[float | None],
    keys: Sequence[str] = ("n", "p50", "p90", "p99", "max"),
    ndigits: int = 3,
) -> dict[str, float | None]:
    """`keys` from: "n", "pNN" (a percentile), "median", "min", "max", "mean", "last". None
    samples are skipped; with no samples every key but "n" is None."""
    a = np.asarray([v for v in values if v is not None], dtype=float)
    out: dict[str, float | None] = {}
    for key in keys:
        if key == "n":
            out[key] = len(a)
        elif not a.size:
            out[key] = None
        elif key == "median":
            out[key] = round(float(np.median(a)), ndigits)
        elif key in ("min", "max", "mean"):
            out[key] = round(float(getattr(a, key)()), ndigits)
        elif key == "last":
            out[key] = round(float(a[-1]), ndigits)
        else:
            out[key] = round(float(np.percentile(a, float(key[1:]))), ndigits)
    return out
