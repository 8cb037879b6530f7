"""Labelled question pairs (``label, question_a, question_b``): the files ``manage.py calibrate_thresholds``
and the lab read, and the row readers the lab's other formats share.

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


class DataError(ValueError):
    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class LabelledPair:
    a: str
    b: str
    label: str  # duplicate | related | unrelated


def open_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
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


def rows_with_header(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
    """Rows cut to ``columns``; the header must start with them (extra columns are ignored)."""
    rows = open_rows(path)
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
    for line, (label, a, b) in rows_with_header(path, ("label", "question_a", "question_b")):
        kind = PAIR_LABELS.get(label.strip().lower())
        if kind is None:
            raise DataError(path, line, f"unknown label {label!r}; expected one of {sorted(set(PAIR_LABELS))}")
        pairs.append(LabelledPair(a, b, kind))
    if not pairs:
        raise DataError(path, None, "no pairs")
    return pairs
