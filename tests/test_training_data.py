"""The training pipeline's data steps that need no torch: pool batches, BM25 mining, silver files, the report."""

from __future__ import annotations

from pathlib import Path

import pytest

from embeddings.cards import available
from tests.conftest import SHARED_DATA
from training import augment, corpora, report
from training.corpora import Pair


def test_a_later_pool_file_leaves_every_earlier_pair_unchanged():
    build = corpora.load_pool_builder()
    first = build.load_events(build.POOLS)
    everything = build.load_all_events()
    assert len(everything) > len(first)  # pools_more_*.json exist

    def pairs(events: list) -> set[tuple[str, str, str]]:
        return {(p.label, p.a, p.b) for rows in build.build(events).values() for p in rows}

    alone = pairs(first)
    together = pairs(everything)
    assert alone < together
    splits_alone = {e.id: e.split for e in first}
    build.assign_splits(everything)
    assert all(e.split == splits_alone[e.id] for e in everything if e.id in splits_alone)


def test_agreement_scores_another_annotator_and_names_a_bad_line(tmp_path: Path):
    build = corpora.load_pool_builder()
    by_split = build.build(build.load_all_events())
    dev = by_split["dev"]
    dup = next(p for p in dev if p.label == "duplicate")
    rel = next(p for p in dev if p.label == "related")
    other = tmp_path / "other.tsv"
    # Agrees on the duplicate, calls the related pair unrelated, and reads the pair in the other order.
    other.write_text(f"label\tquestion_a\tquestion_b\nduplicate\t{dup.b}\t{dup.a}\nunrelated\t{rel.a}\t{rel.b}\n")
    text = build.agreement(other, by_split)
    assert "F1: duplicate 1.000, related 0.000, unrelated 0.000" in text
    assert "accuracy 0.500" in text

    other.write_text(f"label\tquestion_a\tquestion_b\nduplicate\t{dup.a}\t{dup.b}\nsame\t{rel.a}\t{rel.b}\n")
    with pytest.raises(SystemExit, match=r"other.tsv:3: expected a label"):
        build.agreement(other, by_split)
    other.write_text("label\tquestion_a\tquestion_b\nrelated\tis lunch provided\twho is the keynote speaker\n")
    with pytest.raises(SystemExit, match=r"other.tsv:2: this pair is not in train, dev or test"):
        build.agreement(other, by_split)


def test_the_second_annotator_file_covers_test_pairs_only():
    build = corpora.load_pool_builder()
    by_split = build.build(build.load_all_events())
    test = {frozenset((p.a, p.b)) for p in by_split["test"]}
    with (corpora.EVENT_PAIRS / "second_annotator.tsv").open() as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1:]
    assert len(rows) == 300 and all(frozenset(r[1:]) in test for r in rows)
    assert "macro-F1 0.904" in build.agreement(corpora.EVENT_PAIRS / "second_annotator.tsv", by_split)


def test_bm25_ranks_the_overlapping_question_first():
    texts = [
        "will the slides be shared after the talk",
        "are the slides from the talk shared anywhere",
        "where is the nearest coffee",
        "how much does parking cost",
    ]
    top = augment.bm25_top(texts, k=2)
    assert top[0][0] == 1 and top[1][0] == 0
    assert all(i not in row for i, row in enumerate(top))  # never the question itself


@pytest.mark.skipif(
    not (SHARED_DATA / "pairs" / "semeval2016_task3_b").is_dir(), reason="needs ../shared/data (SemEval-2016 3B)"
)
def test_unlabelled_questions_hold_no_dev_or_test_text():
    texts, origin = augment.unlabelled_questions()
    held_out = {t for split in ("dev", "test") for p in corpora.event_pairs(split) for t in (p[0].a, p[0].b)}
    assert texts and not set(texts) & held_out
    assert {"semeval"} < set(origin.values())


def test_silver_file_round_trips(tmp_path: Path):
    rows = [Pair("is it recorded?", "will there be a video", 0.9312), Pair("a\tb  c", "back\\slash", 0.0)]
    corpora.write_silver(tmp_path / "silver.tsv", rows)
    assert corpora.read_silver(tmp_path / "silver.tsv") == [rows[0], Pair("a b c", "back\\slash", 0.0)]


def test_report_lists_every_shipped_model_beside_the_papers():
    text = report.render()
    for name in available():
        assert f"`{name}`" in text
    assert "| SBERT-base (paper) | | 420 | 85.35 |" in text
    assert "| TinyBERT (paper) | | 56 | 0.82 |" in text


def test_the_entry_point_runs_a_step_and_names_an_unknown_one(tmp_path: Path, capsys):
    from training.__main__ import main

    assert main(["report", "--out", str(tmp_path / "models.md")]) == 0
    assert (tmp_path / "models.md").read_text().startswith("# Models")
    assert main(["bogus"]) == 2
    assert "unknown step 'bogus'" in capsys.readouterr().err


def test_room_scores_calibrate_on_dev_and_keep_one_paraphrase_per_cluster():
    import numpy as np

    from training import room

    labels = ["duplicate", "related", "unrelated"] * 4
    cos = np.array([0.8, 0.5, 0.2] * 4)
    split = room.Split(labels=labels, cos=cos, density=np.full(12, 0.4), room=np.full(12, 0.4))
    assert room.evaluate(split, split, lambda s: s.cos)["test_macro_f1"] == 1.0
    # Scores that put every pair in one class are no better than a third of the classes right.
    assert room.evaluate(split, split, lambda s: s.density)["test_macro_f1"] < 0.5

    build = corpora.load_pool_builder()
    events = build.load_events(build.POOLS)[:3]
    one = room.contexts(events, one_per_cluster=True)
    every = room.contexts(events, one_per_cluster=False)
    for e in events:
        assert len(one[e.id]) == len(e.clusters)
        assert set(one[e.id]) < set(every[e.id])
        assert all(any(t in c.texts for t in one[e.id]) for c in e.clusters)
