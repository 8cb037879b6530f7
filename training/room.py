"""Room-relative similarity, measured: does scoring a pair against its event's other questions help?

A measurement, not a shipped feature. In a live event the app knows every question asked so far,
so it could correct each cosine for how crowded the two questions' neighbourhood is, the way CSLS
(Conneau et al. 2018) corrects nearest-neighbour retrieval for hubs::

    score(a, b) = cos(a, b) - w * ((r(a) + r(b)) / 2 - prior)

where ``r(q)`` is the mean cosine of ``q`` to its ``k`` nearest other questions of the same event.
``prior`` is either one number for every event (the mean ``r`` on dev: "global") or the mean ``r``
of the pair's own event ("event"), which keeps only each question's density relative to its room.
Thresholds are calibrated on the dev split and applied to the test split, as for the cards.

The context is the event's pool (``data/event_pairs/pools*.json``) in two forms: every question
("all paraphrases", where each question's own duplicates sit among its neighbours) and one
paraphrase drawn per cluster (closer to a real session, where most questions have no duplicate).
Run::

    python -m training room --model minilm-l6

It prints one line per setting: dev macro-F1 at its best thresholds, test macro-F1 at those
thresholds, and test Spearman x100 against the 1 / 0.5 / 0 targets. Plain cosine is the first line.
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from embeddings.pairs import read_pairs
from embeddings.runtime import get_model
from training import corpora
from training.metrics import PAIR_TARGETS, best_thresholds, classification_report, classify_similarities, spearman

LABELS = ("duplicate", "related", "unrelated")


@dataclass
class Split:
    labels: list[str]
    cos: np.ndarray
    density: np.ndarray  # (r(a) + r(b)) / 2 per pair
    room: np.ndarray  # mean r of the pair's event(s)


def contexts(events: list, one_per_cluster: bool, seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    if one_per_cluster:
        return {e.id: [rng.choice(c.texts) for c in e.clusters] for e in events}
    return {e.id: [t for c in e.clusters for t in c.texts] for e in events}


def measure_split(model, events: list, split: str, k: int, one_per_cluster: bool) -> Split:
    event_of = {t: e.id for e in events for c in e.clusters for t in c.texts}
    pairs = read_pairs(corpora.EVENT_PAIRS / f"{split}.tsv")
    wanted = {event_of[t] for p in pairs for t in (p.a, p.b)}
    context = contexts([e for e in events if e.id in wanted], one_per_cluster)
    texts = sorted({t for qs in context.values() for t in qs} | {t for p in pairs for t in (p.a, p.b)})
    vectors = dict(zip(texts, model.embed(texts)))

    def r(text: str) -> float:
        others = [vectors[t] for t in context[event_of[text]] if t != text]
        return float(np.sort(np.stack(others) @ vectors[text])[::-1][:k].mean())

    density = {t: r(t) for t in texts}
    room = {e: float(np.mean([density[t] for t in qs])) for e, qs in context.items()}
    return Split(
        labels=[p.label for p in pairs],
        cos=np.array([float(vectors[p.a] @ vectors[p.b]) for p in pairs]),
        density=np.array([(density[p.a] + density[p.b]) / 2 for p in pairs]),
        room=np.array([(room[event_of[p.a]] + room[event_of[p.b]]) / 2 for p in pairs]),
    )


def evaluate(dev: Split, test: Split, score: Callable[[Split], np.ndarray]) -> dict[str, float]:
    dev_scores, test_scores = score(dev), score(test)
    duplicate, related, dev_f1 = best_thresholds(dev_scores, dev.labels)
    predicted = classify_similarities(test_scores, duplicate, related)
    return {
        "dev_macro_f1": round(dev_f1, 4),
        "test_macro_f1": classification_report(test.labels, predicted, LABELS)["macro_f1"],
        "test_spearman": round(100 * spearman(test_scores, [PAIR_TARGETS[label] for label in test.labels]), 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training room", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--k", type=int, nargs="+", default=[3, 5])
    parser.add_argument("--w", type=float, nargs="+", default=[0.5, 1.0])
    args = parser.parse_args(argv)
    model = get_model(args.model, threads=1)
    events = corpora.load_pool_builder().load_all_events()
    for one_per_cluster in (False, True):
        name = "one paraphrase per cluster" if one_per_cluster else "all paraphrases"
        for k in args.k:
            dev, test = (measure_split(model, events, s, k, one_per_cluster) for s in ("dev", "test"))
            if not one_per_cluster and k == args.k[0]:
                print("plain cosine:", evaluate(dev, test, lambda s: s.cos), flush=True)
            prior = float(dev.density.mean())
            for w in args.w:
                rows = {
                    "global": lambda s, w=w, prior=prior: s.cos - w * (s.density - prior),
                    "event": lambda s, w=w: s.cos - w * (s.density - s.room),
                }
                for prior_name, score in rows.items():
                    print(f"{name}, k {k}, w {w}, prior {prior_name}:", evaluate(dev, test, score), flush=True)


if __name__ == "__main__":
    main()
