"""Readers for the evaluation formats in ``../shared/data`` (and files in the same shape).

Every reader raises :class:`embeddings.pairs.DataError` naming the file and line of a malformed row;
labelled pairs are read by :func:`embeddings.pairs.read_pairs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from embeddings.pairs import DataError, open_rows, rows_with_header

SENTIMENT_LABELS = ("negative", "neutral", "positive")
# The texts that latency is measured on (benchmarks.bench, card-metrics --latency).
DEFAULT_TEXTS = Path(__file__).resolve().parents[2] / "shared" / "data" / "stsb" / "stsb-en-test.csv"


@dataclass(frozen=True)
class ScoredPair:
    a: str
    b: str
    score: float


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str


def read_sts(path: Path) -> list[ScoredPair]:
    """STSb CSV: ``sentence1,sentence2,score`` (0-5), no header."""
    pairs = []
    for line, row in open_rows(path):
        if not row:
            continue
        if len(row) != 3:
            raise DataError(path, line, f"expected 3 columns (sentence1,sentence2,score), got {len(row)}")
        try:
            score = float(row[2])
        except ValueError:
            raise DataError(path, line, f"score is not a number: {row[2]!r}") from None
        pairs.append(ScoredPair(row[0], row[1], score))
    if not pairs:
        raise DataError(path, None, "no pairs")
    return pairs


def read_sentiment(path: Path) -> list[LabelledText]:
    """Labelled texts: header ``label, text``; labels negative / neutral / positive."""
    texts = []
    for line, (label, text) in rows_with_header(path, ("label", "text")):
        label = label.strip().lower()
        if label not in SENTIMENT_LABELS:
            raise DataError(path, line, f"unknown label {label!r}; expected one of {list(SENTIMENT_LABELS)}")
        texts.append(LabelledText(text, label))
    if not texts:
        raise DataError(path, None, "no rows")
    return texts


def load_texts(path: Path, limit: int = 1000) -> list[str]:
    """The first ``limit`` distinct first sentences of an STSb file."""
    seen: dict[str, None] = {}
    for pair in read_sts(path):
        seen.setdefault(pair.a, None)
    return list(seen)[:limit]
