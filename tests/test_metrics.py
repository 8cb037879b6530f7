from __future__ import annotations

import numpy as np
import pytest

from training.metrics import best_thresholds, classification_report, rank, roc_auc, spearman


def test_rank_averages_ties():
    np.testing.assert_allclose(rank(np.array([10, 20, 20, 5])), [2, 3.5, 3.5, 1])


def test_spearman_of_monotonic_and_reversed_data():
    x = [1, 2, 3, 4, 5]
    assert spearman(x, [v**3 for v in x]) == pytest.approx(1.0)
    assert spearman(x, [-v for v in x]) == pytest.approx(-1.0)


def test_spearman_matches_the_textbook_example():
    # Classic example: d^2 sum = 4 over n=5 -> rho = 1 - 6*4/(5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)


def test_roc_auc_counts_correctly_ordered_pairs():
    assert roc_auc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert roc_auc([0.9, 0.2, 0.3, 0.1], [True, True, False, False]) == 0.75
    with pytest.raises(ValueError):
        roc_auc([0.1, 0.2], [True, True])


def test_classification_report_macro_f1_and_confusion():
    gold = ["duplicate", "duplicate", "related", "unrelated"]
    predicted = ["duplicate", "related", "related", "unrelated"]
    report = classification_report(gold, predicted, ["duplicate", "related", "unrelated"])
    assert report["per_class"]["duplicate"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert report["per_class"]["related"]["precision"] == 0.5
    assert report["confusion"]["duplicate"]["related"] == 1
    assert report["macro_f1"] == pytest.approx((0.6667 + 0.6667 + 1.0) / 3, abs=1e-4)
    assert report["accuracy"] == 0.75


def test_best_thresholds_separate_three_bands():
    sims = np.array([0.95, 0.9, 0.85, 0.6, 0.55, 0.5, 0.2, 0.1, 0.05])
    gold = ["duplicate"] * 3 + ["related"] * 3 + ["unrelated"] * 3
    duplicate, related, score = best_thresholds(sims, gold)
    assert score == pytest.approx(1.0)
    assert 0.6 < duplicate <= 0.85
    assert 0.2 < related <= 0.5


def test_best_thresholds_without_related_learns_only_duplicate():
    duplicate, related, score = best_thresholds(
        np.array([0.9, 0.8, 0.3, 0.2]), ["duplicate", "duplicate", "unrelated", "unrelated"]
    )
    assert related is None
    assert 0.3 < duplicate <= 0.8
    assert score == 1.0
