"""Slot checks on a question pair: the same words about another number are another question.

The highest-scoring wrong duplicate flags on whole events are nearly all one ask about another
slot ("85 decibels" / "100 decibels", "homework 8" / "homework 7", "by 2050" / "by 2100"), which
the verifier scores as high as a paraphrase. Numbers written as digits are cheap to compare
exactly; a pair whose questions both give numbers, and not the same ones, is not a duplicate.
Hand-written because no library does this, and it ships in the Lambda zip.
"""

from __future__ import annotations

import re

# 1,000 and 1.5 stay one number; "10-80" is two.
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> frozenset[str]:
    return frozenset(n.replace(",", "") for n in _NUMBER.findall(text))


def conflict(a: str, b: str) -> str | None:
    """Why two questions cannot be the same question, or None when their numbers allow it."""
    left, right = numbers(a), numbers(b)
    if left and right and left != right:
        return f"numbers {' '.join(sorted(left))} / {' '.join(sorted(right))}"
    return None
