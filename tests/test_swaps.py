"""Slot swaps (training.swaps): hard negatives made by rule from the train events' pools."""

from __future__ import annotations

import random

import pytest

from training import corpora, swaps


def words_changed(a: str, b: str) -> list[tuple[str, str]]:
    return [(x, y) for x, y in zip(a.split(), b.split()) if x != y]


def test_a_year_moves_by_one_and_nothing_else_changes():
    text = "How much will sea levels rise by 2050 in the Netherlands?"
    swapped = swaps.swap_text(text, "year", random.Random(1))
    assert swapped is not None and len(swapped.split()) == len(text.split())
    [(old, new)] = words_changed(text, swapped)
    assert old == "2050" and new in {"2049", "2051"}


def test_a_number_rule_leaves_years_to_the_year_rule():
    assert swaps.swap_text("What changed in 2024?", "number", random.Random(1)) is None
    swapped = swaps.swap_text("How did you get your first 100 customers?", "number", random.Random(1))
    [(old, new)] = words_changed("How did you get your first 100 customers?", swapped)
    assert old == "100" and new.isdigit() and new != "100"


def test_tiers_and_directions_swap_keeping_case():
    pro = swaps.swap_text("How much does the Pro plan cost?", "tier", random.Random(3))
    [(old, new)] = words_changed("How much does the Pro plan cost?", pro)
    assert old == "Pro" and new[0].isupper() and new.lower() in swaps.GROUPS["tier"][0]
    assert swaps.swap_text("Will bonuses be higher than last year?", "direction", random.Random(0)) == (
        "Will bonuses be lower than last year?"
    )
    assert swaps.swap_text("bonus pro rated for parental leave?", "tier", random.Random(0)) is None
    assert swaps.swap_text("Is the code open source?", "direction", random.Random(0)) is None


def test_slides_become_the_recording_only_when_talk_materials_are_asked_about():
    assert swaps.swap_text("Will the slides be shared?", "slides_recording", random.Random(0)) in {
        "Will the recording be shared?",
        "Will the video be shared?",
    }
    assert (
        swaps.swap_text("whats your recording setup, mic and interface", "slides_recording", random.Random(0)) is None
    )


def test_train_swaps_are_deterministic_and_never_use_a_dev_or_test_text():
    first, second = swaps.train_swaps(), swaps.train_swaps()
    assert first == second and len(first) > 500
    assert {"year", "number", "tier", "direction", "slides_recording"} <= {s.rule for s in first}
    build = corpora.load_pool_builder()
    events = build.load_all_events()
    build.assign_splits(events)
    split_of = {build.normalize(t): e.split for e in events for c in e.clusters for t in c.texts}
    assert all(split_of[build.normalize(s.original)] == "train" for s in first)
    assert not any(split_of.get(build.normalize(s.swapped), "train") != "train" for s in first)
    by_event = {e.id: e for e in events}
    for s in first[:200]:
        cluster = next(c for c in by_event[s.event].clusters if (c.topic, c.index) == s.cluster)
        assert s.original in cluster.texts and s.swapped not in cluster.texts


def test_a_dev_event_is_refused():
    build = corpora.load_pool_builder()
    events = build.load_all_events()
    build.assign_splits(events)
    dev = next(e for e in events if e.split == "dev")
    with pytest.raises(ValueError, match="train events only"):
        swaps.make_swaps([dev], set(), build.normalize)


def test_hard_triplets_keep_paraphrases_out_of_each_others_negatives():
    from training import hard_negatives

    pools = hard_negatives.TrainPools.load()
    rows = hard_negatives.epoch_triplets(pools, random.Random(0), swap_share=0.5)
    swapped = {t for alternatives in pools.swaps.values() for t in alternatives}
    assert any(r.negative in swapped for r in rows) and any(r.negative_cluster for r in rows)
    for batch in hard_negatives.disjoint_batches(rows, 32):
        anchors = [r.cluster for r in batch]
        assert len(set(anchors)) == len(anchors)
        assert not {r.negative_cluster for r in batch} & set(anchors)
    assert all(r.negative_cluster != r.cluster and r.a != r.b for r in rows)
