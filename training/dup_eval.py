"""How precise the duplicate flags are on the *dev* events: a replay proxy and the dev pairs.

    python -m training.dup_eval --model minilm-l6 --json           # a shipped ONNX model
    python -m training.dup_eval --model-dir build/finetuned/X --json  # a torch checkpoint

* **Replay proxy**: each dev event's questions (every text of every cluster of its pool) in a
  seeded random order (``random.Random(event_id)``); each question is compared with all earlier
  questions of the event and only its best match counts. A flag (best cosine >= t) is right when
  the best match is in the question's own cluster. Precision = right flags / flags; recall = right
  flags / questions that have an earlier question of their cluster. Reported: precision at recall
  0.60 and 0.70 (the best precision among thresholds that reach that recall) and precision/recall
  at a few fixed thresholds.
* **Dev pairs** (``dev.tsv``): ROC AUC of duplicate against related + unrelated, and the duplicate
  precision at recall 0.70.

The app flags against the whole room, not one pair, so the replay proxy is the figure to select on.
Nothing here reads a train or test event.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embeddings.pairs import read_pairs
from training.corpora import load_pool_builder
from training.metrics import roc_auc
from training.sbert import encode, quiet, sentence_model

Embed = Callable[[Sequence[str]], dict[str, np.ndarray]]
EVENT_PAIRS = Path(__file__).resolve().parent / "data" / "event_pairs"
RECALLS = (0.6, 0.7)
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9)


def dev_events() -> list[Any]:

    build = load_pool_builder()
    events = build.load_all_events()
    build.assign_splits(events)
    return sorted((e for e in events if e.split == "dev"), key=lambda e: e.id)


def replay(event: Any, vectors: dict[str, np.ndarray]) -> list[tuple[float, bool, bool]]:
    """(best earlier cosine, best match in own cluster, an earlier own-cluster question exists) per question."""
    texts = [(t, (c.topic, c.index)) for c in event.clusters for t in c.texts]
    random.Random(f"{event.id}").shuffle(texts)
    matrix = np.stack([vectors[t] for t, _ in texts])
    sims = matrix @ matrix.T
    rows = []
    for i in range(1, len(texts)):
        best = int(np.argmax(sims[i, :i]))
        own = [j for j in range(i) if texts[j][1] == texts[i][1]]
        rows.append((float(sims[i, best]), texts[best][1] == texts[i][1], bool(own)))
    return rows


def precision_at_recall(scores: np.ndarray, right: np.ndarray, positives: int, recall: float) -> float:
    """Best precision over thresholds whose recall (right flags / positives) reaches ``recall``."""
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(right[order])
    precision = hits / np.arange(1, len(order) + 1)
    reached = hits / positives >= recall
    # Ties: a threshold keeps every question with the same score, so only the last of a run counts.
    last = np.r_[scores[order][1:] != scores[order][:-1], True]
    usable = reached & last
    return round(float(precision[usable].max()), 4) if usable.any() else 0.0


def replay_metrics(rows: list[tuple[float, bool, bool]]) -> dict[str, Any]:
    scores = np.array([r[0] for r in rows])
    right = np.array([r[1] for r in rows])
    positives = sum(r[2] for r in rows)
    result: dict[str, Any] = {"questions": len(rows), "with_earlier_duplicate": positives}
    for r in RECALLS:
        result[f"precision_at_recall_{r:.2f}"] = precision_at_recall(scores, right, positives, r)
    result["at_threshold"] = {
        f"{t:.2f}": {
            "flags": int((scores >= t).sum()),
            "precision": round(float(right[scores >= t].mean()), 4) if (scores >= t).any() else None,
            "recall": round(float(right[scores >= t].sum() / positives), 4),
        }
        for t in THRESHOLDS
    }
    return result


def pair_metrics(embed: Embed) -> dict[str, Any]:
    pairs = read_pairs(EVENT_PAIRS / "dev.tsv")
    vectors = embed([t for p in pairs for t in (p.a, p.b)])
    scores = np.array([float(vectors[p.a] @ vectors[p.b]) for p in pairs])
    duplicate = np.array([p.label == "duplicate" for p in pairs])
    return {
        "pairs": len(pairs),
        "duplicate_auc": round(roc_auc(scores, duplicate), 4),
        "duplicate_precision_at_recall_0.70": precision_at_recall(scores, duplicate, int(duplicate.sum()), 0.7),
    }


def evaluate(embed: Embed) -> dict[str, Any]:
    """The replay proxy over all dev events (pooled) and the dev pair figures."""
    events = dev_events()
    vectors = embed([t for e in events for c in e.clusters for t in c.texts])
    rows = [row for e in events for row in replay(e, vectors)]
    return {"replay": {"events": len(events), **replay_metrics(rows)}, "dev_pairs": pair_metrics(embed)}


def onnx_embedder(name: str) -> Embed:
    from embeddings.runtime import get_model
    from training.evaluate import embed_all

    model = get_model(name)
    return lambda texts: embed_all(model, texts)


def torch_embedder(folder: Path) -> Embed:

    quiet()
    model = sentence_model(folder)
    return lambda texts: encode(model, texts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.dup_eval", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a model in embeddings/models (ONNX, as the app runs it)")
    source.add_argument("--model-dir", type=Path, help="a sentence-transformers checkpoint folder (torch, fp32)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    embed = onnx_embedder(args.model) if args.model else torch_embedder(args.model_dir)
    result = {"model": args.model or str(args.model_dir), **evaluate(embed)}
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
