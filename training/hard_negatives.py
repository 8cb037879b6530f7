"""Stage-2 contrastive batches: (anchor, paraphrase, hard negative) from the train events' pools.

``finetune --loss-event mnrl-hard`` interleaves these batches, trained with
MultipleNegativesRankingLoss (each anchor must pick its own paraphrase among every positive and
negative of the batch), with the usual CosineSimilarityLoss batches of the labelled event pairs and
STSb train, so that general similarity is not forgotten.

The hard negative of an anchor is, with probability ``swap_share`` and when the anchor has one, a
slot swap of the anchor (:mod:`training.swaps`: another year, tier, direction ...);
otherwise a text of another cluster of the same topic (a related question); failing that, a text of
another, non-adjacent topic of the same event. No batch holds two rows whose clusters meet (the
anchor's and the negative's clusters), so no in-batch negative is in truth a paraphrase.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from training.corpora import load_pool_builder
from training.swaps import make_swaps

ClusterKey = tuple[str, int, int]  # (event, topic, index)


@dataclass(frozen=True)
class HardTriplet:
    a: str
    b: str
    negative: str
    cluster: ClusterKey
    negative_cluster: ClusterKey | None  # None for a slot swap, which belongs to no cluster


@dataclass
class TrainPools:
    """The train events' clusters and the slot swaps of their texts."""

    events: list[Any]
    swaps: dict[str, list[str]]

    @classmethod
    def load(cls) -> TrainPools:

        build = load_pool_builder()
        events = build.load_all_events()
        build.validate_pools(events)
        build.assign_splits(events)
        train = sorted((e for e in events if e.split == "train"), key=lambda e: e.id)
        held_out = {build.normalize(t) for e in events if e.split != "train" for c in e.clusters for t in c.texts}
        swaps: dict[str, list[str]] = defaultdict(list)
        for s in make_swaps(train, held_out, build.normalize):
            swaps[s.original].append(s.swapped)
        return cls(train, dict(swaps))


def negative_for(
    event: Any, cluster: Any, anchor: str, pools: TrainPools, rng: random.Random, swap_share: float
) -> tuple[str, ClusterKey | None]:
    if pools.swaps.get(anchor) and rng.random() < swap_share:
        return rng.choice(pools.swaps[anchor]), None
    siblings = [c for c in event.clusters if c.topic == cluster.topic and c.index != cluster.index]
    if not siblings:
        siblings = [
            c
            for c in event.clusters
            if c.topic != cluster.topic and frozenset((c.topic, cluster.topic)) not in event.adjacent
        ]
    other = rng.choice(siblings)
    return rng.choice(other.texts), (event.id, other.topic, other.index)


def epoch_triplets(pools: TrainPools, rng: random.Random, swap_share: float) -> list[HardTriplet]:
    """One triplet per text of every cluster with a paraphrase: each text is an anchor once."""
    rows = []
    for event in pools.events:
        for cluster in event.clusters:
            if len(cluster.texts) < 2:
                continue
            for anchor in cluster.texts:
                positive = rng.choice([t for t in cluster.texts if t != anchor])
                negative, where = negative_for(event, cluster, anchor, pools, rng, swap_share)
                rows.append(HardTriplet(anchor, positive, negative, (event.id, cluster.topic, cluster.index), where))
    rng.shuffle(rows)
    return rows


def disjoint_batches(rows: list[HardTriplet], batch_size: int) -> list[list[HardTriplet]]:
    """Batches in which no two rows share a cluster (as anchor or negative); order otherwise kept."""
    batches, pending = [], rows
    while pending:
        batch, taken, rest = [], set(), []
        for row in pending:
            keys = {row.cluster, row.negative_cluster} - {None}
            if len(batch) < batch_size and not keys & taken:
                batch.append(row)
                taken |= keys
            else:
                rest.append(row)
        batches.append(batch)
        pending = rest
    return batches


def interleave(triplets: list[list[Any]], pairs: list[list[Any]], rng: random.Random) -> list[list[Any]]:
    """Both kinds of batch in one epoch, in random order."""
    batches = triplets + pairs
    rng.shuffle(batches)
    return batches
