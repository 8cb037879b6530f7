from __future__ import annotations

import pytest

from embeddings.pairs import DataError, read_pairs
from tests.conftest import SHARED_DATA, needs_shared_pairs, needs_stsb
from training.datasets import read_sentiment, read_sts


@needs_shared_pairs
def test_reads_every_shared_pair_file():
    files = sorted((SHARED_DATA / "pairs").glob("*/*.tsv"))
    assert files, "shared data missing"
    for path in files:
        pairs = read_pairs(path)
        assert {p.label for p in pairs} <= {"duplicate", "related", "unrelated"}
        assert len({p.label for p in pairs}) >= 2


@needs_stsb
def test_reads_stsb():
    pairs = read_sts(SHARED_DATA / "stsb" / "stsb-en-test.csv")
    assert len(pairs) == 1379
    assert 0 <= min(p.score for p in pairs) and max(p.score for p in pairs) <= 5


def test_semeval_labels_map_to_the_three_kinds(write_tsv):
    path = write_tsv(
        "p.tsv", "label\tquestion_a\tquestion_b", ["PerfectMatch\ta\tb", "Relevant\tc\td", "Irrelevant\te\tf"]
    )
    assert [p.label for p in read_pairs(path)] == ["duplicate", "related", "unrelated"]


def test_malformed_pair_row_names_file_and_line(write_tsv):
    path = write_tsv("bad.tsv", "label\tquestion_a\tquestion_b", ["1\ta\tb", "1\tonly two"])
    with pytest.raises(DataError, match=r"bad\.tsv:3: expected 3 tab-separated columns"):
        read_pairs(path)


def test_unknown_label_names_file_and_line(write_tsv):
    path = write_tsv("bad.tsv", "label\tquestion_a\tquestion_b", ["maybe\ta\tb"])
    with pytest.raises(DataError, match=r"bad\.tsv:2: unknown label 'maybe'"):
        read_pairs(path)


def test_missing_header_is_reported(write_tsv):
    path = write_tsv("bad.tsv", "1\ta\tb", [])
    with pytest.raises(DataError, match=r"bad\.tsv:1: expected a header"):
        read_pairs(path)


def test_sts_score_must_be_a_number(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("a,b,3.0\nc,d,high\n")
    with pytest.raises(DataError, match=r"s\.csv:2: score is not a number"):
        read_sts(path)


def test_sentiment_rows_and_errors(write_tsv):
    good = write_tsv("s.tsv", "label\ttext", ["positive\tgreat", "Negative\tbad"])
    assert [(r.label, r.text) for r in read_sentiment(good)] == [("positive", "great"), ("negative", "bad")]
    bad = write_tsv("b.tsv", "label\ttext", ["happy\tgreat"])
    with pytest.raises(DataError, match=r"b\.tsv:2"):
        read_sentiment(bad)


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_pairs(tmp_path / "nope.tsv")
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("label\tquestion_a\tquestion_b\n1\tcaf\xe9\tb\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        read_pairs(latin)
