"""Evaluate a shipped model on labelled data.

python -m training.evaluate sts ../shared/data/stsb/stsb-en-test.csv [--model NAME] --json
python -m training.evaluate pairs FILE.tsv [--model NAME] --json
python -m training.evaluate sentiment FILE.tsv [--model NAME] --json
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import cli
from embeddings.cards import DEFAULT_EMBEDDING_MODEL, DEFAULT_SENTIMENT_MODEL
from embeddings.pairs import LabelledPair, read_pairs
from embeddings.runtime import Model, get_model
from training.datasets import read_sentiment, read_sts
from training.metrics import (
    PAIR_CLASSES,
    PAIR_TARGETS,
    classification_report,
    classify_similarities,
    roc_auc,
    spearman,
)

BATCH = 32


def embed_all(model: Model, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Vectors of the distinct texts (each embedded once; the model runs one text per session call)."""
    unique = list(dict.fromkeys(texts))
    vectors = {}
    for start in range(0, len(unique), BATCH):
        chunk = unique[start : start + BATCH]
        for text, vector in zip(chunk, model.embed(chunk)):
            vectors[text] = vector
    return vectors


def pair_similarities(model: Model, pairs: Sequence[Any]) -> np.ndarray:
    vectors = embed_all(model, [p.a for p in pairs] + [p.b for p in pairs])
    return np.array([float(vectors[p.a] @ vectors[p.b]) for p in pairs])


def evaluate_sts(path: Path, model: Model) -> dict[str, Any]:
    pairs = read_sts(path)
    similarities = pair_similarities(model, pairs)
    return {"spearman": round(100 * spearman(similarities, [p.score for p in pairs]), 2), "pairs": len(pairs)}


def evaluate_pairs(
    path: Path, model: Model, duplicate: float | None = None, related: float | None = None
) -> dict[str, Any]:
    pairs: list[LabelledPair] = read_pairs(path)
    similarities = pair_similarities(model, pairs)
    gold = [p.label for p in pairs]
    card = model.card.thresholds
    if card is None and (duplicate is None or related is None):
        raise ValueError(f"model {model.card.name!r} has no calibrated thresholds: pass --duplicate and --related")
    thresholds = {
        "duplicate": duplicate if duplicate is not None else card.duplicate,
        "related": related if related is not None else card.related,
    }
    result: dict[str, Any] = {"pairs": len(pairs), "thresholds": thresholds}
    if "related" in gold:
        predicted = classify_similarities(similarities, thresholds["duplicate"], thresholds["related"])
        report = classification_report(gold, predicted, PAIR_CLASSES)
        result.update(
            macro_f1=report["macro_f1"],
            per_class=report["per_class"],
            confusion=report["confusion"],
            spearman=round(100 * spearman(similarities, [PAIR_TARGETS[g] for g in gold]), 2),
        )
    else:
        is_duplicate = np.array([g == "duplicate" for g in gold])
        flagged = similarities >= thresholds["duplicate"]
        tp = int((flagged & is_duplicate).sum())
        precision = tp / flagged.sum() if flagged.sum() else 0.0
        recall = tp / is_duplicate.sum() if is_duplicate.sum() else 0.0
        result.update(
            precision=round(float(precision), 4),
            recall=round(float(recall), 4),
            f1=round(float(2 * precision * recall / (precision + recall)) if tp else 0.0, 4),
            roc_auc=round(roc_auc(similarities, is_duplicate), 4),
        )
    return result


def evaluate_sentiment(path: Path, model: Model) -> dict[str, Any]:
    rows = read_sentiment(path)
    labels = model.card.labels
    predicted: list[str] = []
    for start in range(0, len(rows), BATCH):
        probabilities = model.classify([r.text for r in rows[start : start + BATCH]])
        predicted.extend(labels[i] for i in probabilities.argmax(axis=1))
    report = classification_report([r.label for r in rows], predicted, labels)
    return {"rows": len(rows), **report}


def _show(result: dict[str, Any]) -> None:
    for key, value in result.items():
        if not isinstance(value, dict):
            print(f"{key}: {value}")
    for label, scores in result.get("per_class", {}).items():
        print(f"  {label:10s} " + "  ".join(f"{k} {v}" for k, v in scores.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["sts", "pairs", "sentiment"])
    parser.add_argument("file", type=Path)
    parser.add_argument("--model", help="model name (default: the function's default for the task)")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all cores)")
    parser.add_argument("--duplicate", type=float, help="duplicate threshold (default: the model card's)")
    parser.add_argument("--related", type=float, help="related threshold (default: the model card's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    def evaluate() -> dict[str, Any]:
        default = DEFAULT_SENTIMENT_MODEL if args.task == "sentiment" else DEFAULT_EMBEDDING_MODEL
        model = get_model(args.model or default, threads=args.threads)
        expected = "sentiment" if args.task == "sentiment" else "embedding"
        if model.card.task != expected:
            raise ValueError(f"model {model.card.name!r} is a {model.card.task} model; {args.task} needs {expected}")
        if args.task == "sts":
            metrics = evaluate_sts(args.file, model)
        elif args.task == "pairs":
            metrics = evaluate_pairs(args.file, model, args.duplicate, args.related)
        else:
            metrics = evaluate_sentiment(args.file, model)
        return {"task": args.task, "file": str(args.file), "model": model.card.name, **metrics}

    return cli.run(evaluate, args.json, _show)


if __name__ == "__main__":
    sys.exit(main())
