"""Readers for the evaluation formats in ``../shared/data`` (and files in the same shape).

Every reader raises :class:`DataError` naming the file and line of a malformed row.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PAIR_LABELS = {
    "duplicate": "duplicate",
    "related": "related",
    "unrelated": "unrelated",
    # SemEval-2016 task 3 B
    "perfectmatch": "duplicate",
    "relevant": "related",
    "irrelevant": "unrelated",
    # binary sets
    "1": "duplicate",
    "0": "unrelated",
}
SENTIMENT_LABELS = ("negative", "neutral", "positive")


class DataError(ValueError):
    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class ScoredPair:
    a: str
    b: str
    score: float


@dataclass(frozen=True)
class LabelledPair:
    a: str
    b: str
    label: str  # duplicate | related | unrelated


@dataclass(frozen=True)
class LabelledText:
    text: str
    label: str


def _open(path: Path) -> Iterator[tuple[int, list[str]]]:
    try:
        handle = open(path, encoding="utf-8", newline="")
    except OSError as exc:
        raise DataError(path, None, f"cannot read: {exc.strerror}") from None
    with handle:
        try:
            if path.suffix == ".csv":
                reader = csv.reader(handle)
            else:
                reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
            for row in reader:
                yield reader.line_num, row
        except UnicodeDecodeError:
            raise DataError(path, None, "not UTF-8 text") from None
        except csv.Error as exc:
            raise DataError(path, reader.line_num, str(exc)) from None


def read_sts(path: Path) -> list[ScoredPair]:
    """STSb CSV: ``sentence1,sentence2,score`` (0-5), no header."""
    pairs = []
    for line, row in _open(path):
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


def _rows_with_header(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Rows cut to ``columns``; the header must start with them (extra columns are ignored)."""
    rows = _open(path)
    width = len(columns)
    for line, row in rows:
        if [c.strip().lower() for c in row[:width]] != list(columns):
            raise DataError(path, line, f"expected a header starting {'<TAB>'.join(columns)}")
        width = len(row)
        break
    for line, row in rows:
        if not row or row == [""]:
            continue
        if len(row) != width:
            raise DataError(path, line, f"expected {width} tab-separated columns, got {len(row)}")
        yield line, row[: len(columns)]


def read_pairs(path: Path) -> list[LabelledPair]:
    """Labelled pairs: header ``label, question_a, question_b``."""
    pairs = []
    for line, (label, a, b) in _rows_with_header(path, ("label", "question_a", "question_b")):
        kind = PAIR_LABELS.get(label.strip().lower())
        if kind is None:
            raise DataError(path, line, f"unknown label {label!r}; expected one of {sorted(set(PAIR_LABELS))}")
        pairs.append(LabelledPair(a, b, kind))
    if not pairs:
        raise DataError(path, None, "no pairs")
    return pairs


def read_sentiment(path: Path) -> list[LabelledText]:
    """Labelled texts: header ``label, text``; labels negative / neutral / positive."""
    texts = []
    for line, (label, text) in _rows_with_header(path, ("label", "text")):
        label = label.strip().lower()
        if label not in SENTIMENT_LABELS:
            raise DataError(path, line, f"unknown label {label!r}; expected one of {list(SENTIMENT_LABELS)}")
        texts.append(LabelledText(text, label))
    if not texts:
        raise DataError(path, None, "no rows")
    return texts
