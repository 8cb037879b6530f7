"""Repeats to figures: quantiles of one run, medians with the min-max spread over runs, markdown tables."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def quantiles(ms: Sequence[float], prefix: str = "") -> dict[str, float]:
    """Mean and 50th/95th/99th percentiles of one run, in ms."""
    values = np.asarray(ms, dtype=float) if len(ms) else np.array([float("nan")])
    figures = {"mean": float(values.mean())} | {f"p{q}": float(np.percentile(values, q)) for q in (50, 95, 99)}
    return {f"{prefix}{key}": round(value, 3) for key, value in figures.items()}


def values(repeats: Iterable[dict[str, Any]], key: str) -> list[float]:
    return [r[key] for r in repeats if r.get(key) is not None]


def median(repeats: Iterable[dict[str, Any]], key: str) -> float:
    found = values(repeats, key)
    return statistics.median(found) if found else float("nan")


def spread(found: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max); NaNs when nothing was measured."""
    if not found:
        return (float("nan"),) * 3
    return statistics.median(found), min(found), max(found)


def number(value: float, digits: int) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"


def cell(found: Sequence[float], digits: int = 2) -> str:
    """ "2.31 (2.20-2.45)": the median of the repeats and their range; one repeat shows alone."""
    mid, low, high = spread(found)
    if len(found) < 2 or number(low, digits) == number(high, digits):
        return number(mid, digits)
    return f"{number(mid, digits)} ({number(low, digits)}-{number(high, digits)})"


def field(repeats: Iterable[dict[str, Any]], key: str, digits: int = 2) -> str:
    return cell(values(repeats, key), digits)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
