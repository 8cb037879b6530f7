"""Evaluation metrics in plain numpy (the function package carries no scipy or sklearn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

PAIR_CLASSES = ("duplicate", "related", "unrelated")
PAIR_TARGETS = {"duplicate": 1.0, "related": 0.5, "unrelated": 0.0}


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties given their average rank (as scipy.stats.rankdata)."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    rx, ry = rank(np.asarray(x)), rank(np.asarray(y))
    rx -= rx.mean()
    ry -= ry.mean()
    denominator = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denominator) if denominator else 0.0


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """Area under the ROC curve, by the Mann-Whitney U statistic."""
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        raise ValueError("ROC AUC needs both positive and negative examples")
    ranks = rank(np.asarray(scores))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_report(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Macro-F1 over ``labels`` with per-class precision/recall/F1 and the confusion matrix."""
    index = {label: i for i, label in enumerate(labels)}
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    for g, p in zip(gold, predicted):
        confusion[index[g], index[p]] += 1
    per_class = {}
    for i, label in enumerate(labels):
        tp = confusion[i, i]
        precision = tp / confusion[:, i].sum() if confusion[:, i].sum() else 0.0
        recall = tp / confusion[i].sum() if confusion[i].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {
            "precision": round(float(precision), 4),
            "recall": round(float(recall), 4),
            "f1": round(float(f1), 4),
            "support": int(confusion[i].sum()),
        }
    present = [label for label in labels if per_class[label]["support"]]
    return {
        "macro_f1": round(float(np.mean([per_class[label]["f1"] for label in present])), 4),
        "accuracy": round(float(np.trace(confusion) / max(confusion.sum(), 1)), 4),
        "per_class": per_class,
        "confusion": {g: {p: int(confusion[index[g], index[p]]) for p in labels} for g in labels},
    }


def classify_similarities(similarities: np.ndarray, duplicate: float, related: float) -> np.ndarray:
    return np.where(similarities >= duplicate, "duplicate", np.where(similarities >= related, "related", "unrelated"))


def _macro_f1_codes(gold: np.ndarray, predicted: np.ndarray, classes: np.ndarray) -> float:
    scores = []
    for c in classes:
        tp = np.sum((gold == c) & (predicted == c))
        fp = np.sum((gold != c) & (predicted == c))
        fn = np.sum((gold == c) & (predicted != c))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(scores))


def best_thresholds(
    similarities: np.ndarray, gold: Sequence[str], step: float = 0.01
) -> tuple[float, float | None, float]:
    """The (duplicate, related, macro-F1) thresholds that maximise macro-F1 over the classes present.

    Without any ``related`` pair in ``gold`` only the duplicate threshold can be learned: related
    comes back as None.
    """
    codes = {"duplicate": 2, "related": 1, "unrelated": 0}
    gold_codes = np.array([codes[g] for g in gold])
    classes = np.unique(gold_codes)
    grid = np.round(np.arange(-0.2, 1.0 + step / 2, step), 4)
    similarities = np.asarray(similarities)
    best = (1.0, None, -1.0)
    if 1 not in classes:
        for t_dup in grid:
            predicted = np.where(similarities >= t_dup, 2, 0)
            score = _macro_f1_codes(gold_codes, predicted, classes)
            if score > best[2]:
                best = (float(t_dup), None, score)
        return best
    for t_dup in grid:
        is_dup = similarities >= t_dup
        for t_rel in grid[grid <= t_dup]:
            predicted = np.where(is_dup, 2, np.where(similarities >= t_rel, 1, 0))
            score = _macro_f1_codes(gold_codes, predicted, classes)
            if score > best[2]:
                best = (float(t_dup), float(t_rel), score)
    return best
