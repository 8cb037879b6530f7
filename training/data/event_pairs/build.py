"""Build the event question-pair set (train/dev/test TSVs) from the hand-written pools.

The pools live in ``pools.json`` next to this file. Each event (one talk, all-hands,
lecture, town hall, ...) has a list of topics; each topic has clusters; each cluster
holds paraphrases of one question as an attendee might type it.

Labels are derived from the structure:

* duplicate: two texts from the same cluster;
* related:   two texts from different clusters of the same topic;
* unrelated: two texts from different topics of the same event, or (a smaller share)
             from two events of different domains that sit in the same split.

Topic pairs listed in an event's ``adjacent_topics`` are judged too close to call
(e.g. "platforms" and "release" of a game) and are never paired at all.

Splits are made by event: every pair built from one event's pool goes to the split of
that event, and cross-event pairs are only drawn between events of the same split.

Everything is deterministic (fixed seed, per-event random generators), stdlib only.

Usage::

    python build.py            # validate pools, write train/dev/test.tsv, print counts
    python build.py --dry-run  # validate and print counts without writing
    python build.py --agreement second_annotator.tsv  # a second annotator's labels against these

It also writes each split's events as streams (``streams/<split>.tsv``) for replaying whole events
through the app (``python manage.py replay_events``): ``event<TAB>order<TAB>cluster<TAB>topic<TAB>text``,
every question of an event once, in a seeded random posting order. Same cluster = duplicates, same topic
and another cluster = related, anything else = unrelated; cluster and topic names are scoped to the event.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import combinations, product
from pathlib import Path

HERE = Path(__file__).resolve().parent
POOLS = HERE / "pools.json"
# More pools, written later, each file its own batch: its events are dealt into splits among
# themselves and draw cross-event pairs only among themselves, so adding a file leaves every pair
# drawn from the files before it unchanged.
MORE_POOLS = "pools_more_*.json"
SEED = 20240611
LABELS = ("duplicate", "related", "unrelated")
SPLITS = ("train", "dev", "test")
# Events sorted by (domain, id) are dealt out with this pattern: 3/5 train, 1/5 dev, 1/5 test.
SPLIT_PATTERN = ("train", "dev", "train", "test", "train")
# Pairs drawn per event (upper bounds; an event with fewer candidates yields fewer).
QUOTA_DUPLICATE = 14
QUOTA_RELATED = 12
QUOTA_UNRELATED_SAME_EVENT = 10
QUOTA_UNRELATED_CROSS_EVENT = 4
MIN_WORDS, MAX_WORDS, MAX_CHARS = 3, 40, 300

STOPWORDS = frozenset(
    """a an the and or but if of to in on at for from by with without about as into is are was were
    be been being do does did done doing have has had having will would can could should shall may
    might must i me my we us our you your u he she it its they them their this that these those there
    here what whats which who whom whose when whens where wheres why how hows any anything some all
    also just so than then too very not no nor yes ok okay please pls plz thanks thx hi hey hello
    quick one again still really actually get got going gonna im i'm it's that's what's dont don't
    doesnt doesn't isnt isn't can't cant won't wont more most much many every each other r""".split()
)


@dataclass(frozen=True)
class Cluster:
    topic: int
    index: int
    texts: tuple[str, ...]


@dataclass
class Event:
    id: str
    domain: str
    title: str
    topic_names: list[str]
    topic_tags: list[frozenset[str]]
    clusters: list[Cluster]
    adjacent: frozenset[frozenset[int]] = frozenset()
    split: str = ""
    source: str = "pools"

    def topic_texts(self, topic: int) -> list[str]:
        return [t for c in self.clusters if c.topic == topic for t in c.texts]


@dataclass(frozen=True)
class Pair:
    label: str
    a: str
    b: str
    event: str
    kind: str  # duplicate | related | unrelated_same_event | unrelated_cross_event


@dataclass
class Builder:
    events: list[Event]
    seen: set[frozenset[str]] = field(default_factory=set)
    pairs: list[Pair] = field(default_factory=list)

    def add(self, rng: random.Random, label: str, a: str, b: str, event: str, kind: str) -> bool:
        key = frozenset((normalize(a), normalize(b)))
        if len(key) < 2 or key in self.seen:
            return False
        self.seen.add(key)
        if rng.random() < 0.5:
            a, b = b, a
        self.pairs.append(Pair(label, a, b, event, kind))
        return True


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", "", text.lower())).strip()


def tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def content_tokens(text: str) -> set[str]:
    return {t for t in tokens(text) if t not in STOPWORDS and len(t) > 2}


def jaccard(a: str, b: str) -> float:
    ta, tb = tokens(a), tokens(b)
    return len(ta & tb) / max(1, len(ta | tb))


def load_all_events() -> list[Event]:
    events = load_events(POOLS)
    for path in sorted(HERE.glob(MORE_POOLS)):
        events += load_events(path)
    return events


def load_events(path: Path = POOLS) -> list[Event]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        sys.exit(f"{path}:{exc.lineno}: {exc.msg}")
    events: list[Event] = []
    for raw in doc["events"]:
        clusters: list[Cluster] = []
        for ti, topic in enumerate(raw["topics"]):
            for ci, texts in enumerate(topic["clusters"]):
                clusters.append(Cluster(ti, ci, tuple(texts)))
        names = [t["name"] for t in raw["topics"]]
        for a, b in raw.get("adjacent_topics", []):
            if a not in names or b not in names:
                sys.exit(f"{raw['id']}: unknown topic in adjacent_topics: {a!r}, {b!r}")
        adjacent = frozenset(frozenset((names.index(a), names.index(b))) for a, b in raw.get("adjacent_topics", []))
        events.append(
            Event(
                id=raw["id"],
                domain=raw["domain"],
                title=raw["title"],
                topic_names=names,
                topic_tags=[frozenset(t.get("tags", [])) for t in raw["topics"]],
                clusters=clusters,
                adjacent=adjacent,
                source=path.stem,
            )
        )
    return events


def check_text(text: str) -> list[str]:
    problems = []
    if any(ch in text for ch in "\t\r\n"):
        problems.append("contains tab or newline")
    if text != text.strip():
        problems.append("leading/trailing whitespace")
    if text[:1] in {'"', "'"}:
        problems.append("starts with a quote character")
    if '"' in text:
        problems.append("contains a double quote")
    n_words = len(text.split())
    if not MIN_WORDS <= n_words <= MAX_WORDS:
        problems.append(f"{n_words} words")
    if len(text) > MAX_CHARS:
        problems.append(f"{len(text)} chars")
    return problems


def validate_pools(events: list[Event]) -> None:
    errors: list[str] = []
    ids = Counter(e.id for e in events)
    errors += [f"duplicate event id {i}" for i, n in ids.items() if n > 1]
    owner: dict[str, str] = {}
    for e in events:
        for c in e.clusters:
            for t in c.texts:
                errors += [f"{e.id}: {t!r}: {p}" for p in check_text(t)]
                key = normalize(t)
                if key in owner:
                    errors.append(f"text used twice ({owner[key]} and {e.id}): {t!r}")
                owner[key] = e.id
    if errors:
        sys.exit("pool errors:\n  " + "\n  ".join(errors))


def assign_splits(events: list[Event]) -> None:
    for source in sorted({e.source for e in events}):
        batch = sorted((e for e in events if e.source == source), key=lambda ev: (ev.domain, ev.id))
        for i, e in enumerate(batch):
            e.split = SPLIT_PATTERN[i % len(SPLIT_PATTERN)]


def round_robin(queues: list[list[tuple[str, str]]]) -> Iterator[tuple[str, str]]:
    queues = [list(q) for q in queues if q]
    while queues:
        for q in queues:
            yield q.pop(0)
        queues = [q for q in queues if q]


def draw_event(b: Builder, e: Event) -> None:
    rng = random.Random(f"{SEED}:{e.id}")

    # Duplicates: the lowest-overlap pair of each cluster first (hard paraphrases), then random ones.
    dup_queues = []
    for c in e.clusters:
        cand = list(combinations(c.texts, 2))
        rng.shuffle(cand)
        cand.sort(key=lambda p: jaccard(*p))
        dup_queues.append([cand[0], *rng.sample(cand[1:], len(cand) - 1)] if cand else [])
    rng.shuffle(dup_queues)
    n = 0
    for a, t in round_robin(dup_queues):
        if n >= QUOTA_DUPLICATE:
            break
        n += b.add(rng, "duplicate", a, t, e.id, "duplicate")

    # Related: for each pair of clusters in one topic, the highest-overlap pair first
    # (same words, different ask), then random ones.
    rel_queues = []
    for c1, c2 in combinations(e.clusters, 2):
        if c1.topic != c2.topic:
            continue
        cand = list(product(c1.texts, c2.texts))
        rng.shuffle(cand)
        cand.sort(key=lambda p: -jaccard(*p))
        rel_queues.append([cand[0], *rng.sample(cand[1:], len(cand) - 1)])
    rng.shuffle(rel_queues)
    n = 0
    for a, t in round_robin(rel_queues):
        if n >= QUOTA_RELATED:
            break
        n += b.add(rng, "related", a, t, e.id, "related")

    # Unrelated within the event: texts from two different topics.
    unrel_queues = []
    for t1, t2 in combinations(range(len(e.topic_names)), 2):
        if frozenset((t1, t2)) in e.adjacent:
            continue
        cand = list(product(e.topic_texts(t1), e.topic_texts(t2)))
        unrel_queues.append(rng.sample(cand, min(len(cand), 10)))
    rng.shuffle(unrel_queues)
    n = 0
    for a, t in round_robin(unrel_queues):
        if n >= QUOTA_UNRELATED_SAME_EVENT:
            break
        n += b.add(rng, "unrelated", a, t, e.id, "unrelated_same_event")


def draw_cross_event(b: Builder, e: Event) -> None:
    """Unrelated pairs across events: same split, different domain, no shared topic tag, no shared content word."""
    rng = random.Random(f"{SEED}:{e.id}:cross")
    others = sorted(
        (o for o in b.events if o.split == e.split and o.domain != e.domain and o.source == e.source),
        key=lambda o: o.id,
    )
    n = 0
    for _ in range(500):
        if n >= QUOTA_UNRELATED_CROSS_EVENT or not others:
            break
        o = rng.choice(others)
        ti, tj = rng.randrange(len(e.topic_names)), rng.randrange(len(o.topic_names))
        if e.topic_tags[ti] & o.topic_tags[tj]:
            continue
        a, t = rng.choice(e.topic_texts(ti)), rng.choice(o.topic_texts(tj))
        if content_tokens(a) & content_tokens(t):
            continue
        n += b.add(rng, "unrelated", a, t, f"{e.id}+{o.id}", "unrelated_cross_event")


def build(events: list[Event]) -> dict[str, list[Pair]]:
    validate_pools(events)
    assign_splits(events)
    b = Builder(events)
    ordered = sorted(events, key=lambda ev: ev.id)
    for e in ordered:
        draw_event(b, e)
    for e in ordered:
        draw_cross_event(b, e)
    split_of = {e.id: e.split for e in events}
    by_split: dict[str, list[Pair]] = {s: [] for s in SPLITS}
    for p in b.pairs:
        by_split[split_of[p.event.split("+")[0]]].append(p)
    for s in SPLITS:
        random.Random(f"{SEED}:{s}:order").shuffle(by_split[s])
    check_pairs(events, by_split)
    return by_split


def check_pairs(events: list[Event], by_split: dict[str, list[Pair]]) -> None:
    split_of = {e.id: e.split for e in events}
    text_split: dict[str, str] = {}
    for e in events:
        for c in e.clusters:
            for t in c.texts:
                text_split[normalize(t)] = e.split
    keys: dict[frozenset[str], str] = {}
    for s, pairs in by_split.items():
        for p in pairs:
            key = frozenset((normalize(p.a), normalize(p.b)))
            if p.label not in LABELS:
                sys.exit(f"bad label: {p}")
            if any(split_of[ev] != s for ev in p.event.split("+")):
                sys.exit(f"pair crosses splits: {p}")
            if text_split[normalize(p.a)] != s or text_split[normalize(p.b)] != s:
                sys.exit(f"text from another split: {p}")
            if len(key) != 2:
                sys.exit(f"pair of identical texts: {p}")
            if key in keys:
                sys.exit(f"pair appears twice ({keys[key]}, {s}): {p}")
            keys[key] = s


STREAM_HEADER = ("event", "order", "cluster", "topic", "text")


def stream_rows(events: list[Event], split: str) -> list[tuple[str, ...]]:
    """One split's events in posting order: each event's questions shuffled by its own seeded generator."""
    rows: list[tuple[str, ...]] = []
    for e in sorted((ev for ev in events if ev.split == split), key=lambda ev: ev.id):
        questions = [(f"c{c.topic}.{c.index}", e.topic_names[c.topic], text) for c in e.clusters for text in c.texts]
        random.Random(f"{SEED}:{e.id}:stream").shuffle(questions)
        rows += [(e.id, str(order), *question) for order, question in enumerate(questions, start=1)]
    return rows


def write_streams(directory: Path, events: list[Event]) -> None:
    directory.mkdir(exist_ok=True)
    for split in SPLITS:
        with (directory / f"{split}.tsv").open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
            w.writerow(STREAM_HEADER)
            w.writerows(stream_rows(events, split))


def write_tsv(path: Path, pairs: list[Pair]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, lineterminator="\n")
        w.writerow(["label", "question_a", "question_b"])
        for p in pairs:
            w.writerow([p.label, p.a, p.b])


def reread(path: Path) -> list[tuple[str, str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    if rows[0] != ["label", "question_a", "question_b"]:
        sys.exit(f"{path}: bad header {rows[0]}")
    if any(len(r) != 3 for r in rows[1:]):
        sys.exit(f"{path}: row with wrong column count")
    return [(r[0], r[1], r[2]) for r in rows[1:]]


def report(events: list[Event], by_split: dict[str, list[Pair]]) -> str:
    lines = [
        "| split | events | duplicate | related | unrelated (same event / cross-event) | total |",
        "|---|---|---|---|---|---|",
    ]
    tot: Counter[str] = Counter()
    for s in SPLITS:
        c = Counter(p.kind for p in by_split[s])
        n_ev = sum(e.split == s for e in events)
        unrel = c["unrelated_same_event"] + c["unrelated_cross_event"]
        lines.append(
            f"| {s} | {n_ev} | {c['duplicate']} | {c['related']} | {unrel} "
            f"({c['unrelated_same_event']} / {c['unrelated_cross_event']}) | {len(by_split[s])} |"
        )
        tot.update(c)
        tot["events"] += n_ev
    total = sum(len(v) for v in by_split.values())
    unrel = tot["unrelated_same_event"] + tot["unrelated_cross_event"]
    lines.append(
        f"| all | {tot['events']} | {tot['duplicate']} | {tot['related']} | {unrel} "
        f"({tot['unrelated_same_event']} / {tot['unrelated_cross_event']}) | {total} |"
    )
    lines.append("")
    shares = (("duplicate", tot["duplicate"]), ("related", tot["related"]), ("unrelated", unrel))
    lines.append("label shares: " + ", ".join(f"{k} {v / total:.1%}" for k, v in shares))
    lines.append("split shares: " + ", ".join(f"{s} {len(by_split[s]) / total:.1%}" for s in SPLITS))
    n_q = sum(len(c.texts) for e in events for c in e.clusters)
    n_c = sum(len(e.clusters) for e in events)
    n_t = sum(len(e.topic_names) for e in events)
    lines.append(f"pools: {len(events)} events, {n_t} topics, {n_c} clusters, {n_q} questions")
    lines.append("")
    per_split: dict[str, list[str]] = defaultdict(list)
    for e in sorted(events, key=lambda ev: (ev.domain, ev.id)):
        per_split[e.split].append(f"{e.id} ({e.domain})")
    for s in SPLITS:
        lines.append(f"{s} events: " + ", ".join(per_split[s]))
    return "\n".join(lines)


def agreement(path: Path, by_split: dict[str, list[Pair]]) -> str:
    """Macro-F1 of another annotator's labels (a TSV like the splits) against the pools' labels."""
    gold = {frozenset((p.a, p.b)): p.label for pairs in by_split.values() for p in pairs}
    counts: Counter[tuple[str, str]] = Counter()
    with path.open(newline="", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if next(rows, None) != ["label", "question_a", "question_b"]:
            sys.exit(f"{path}:1: expected the header label<TAB>question_a<TAB>question_b")
        for line, row in enumerate(rows, start=2):
            if len(row) != 3 or row[0] not in LABELS:
                sys.exit(f"{path}:{line}: expected a label ({' / '.join(LABELS)}) and two questions")
            key = frozenset(row[1:])
            if key not in gold:
                sys.exit(f"{path}:{line}: this pair is not in train, dev or test")
            counts[gold[key], row[0]] += 1
    if not counts:
        sys.exit(f"{path}: no pairs")
    f1 = {}
    for label in LABELS:
        tp = counts[label, label]
        fp = sum(n for (g, o), n in counts.items() if o == label and g != label)
        fn = sum(n for (g, o), n in counts.items() if g == label and o != label)
        f1[label] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
    total = sum(counts.values())
    lines = [f"{path.name}: {total} pairs", "| gold \\ other | " + " | ".join(LABELS) + " |", "|---|---|---|---|"]
    lines += [f"| {g} | " + " | ".join(str(counts[g, o]) for o in LABELS) + " |" for g in LABELS]
    lines.append("F1: " + ", ".join(f"{k} {v:.3f}" for k, v in f1.items()))
    lines.append(f"macro-F1 {sum(f1.values()) / len(f1):.3f}, accuracy {sum(counts[k, k] for k in LABELS) / total:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="validate and print counts without writing")
    ap.add_argument("--out", type=Path, default=HERE, help="output directory (default: next to this script)")
    ap.add_argument("--agreement", type=Path, help="print another annotator's agreement with the labels (no writing)")
    args = ap.parse_args(argv)

    events = load_all_events()
    by_split = build(events)
    if args.agreement:
        print(agreement(args.agreement, by_split))
        return 0
    if not args.dry_run:
        for s in SPLITS:
            path = args.out / f"{s}.tsv"
            write_tsv(path, by_split[s])
            rows = reread(path)
            if rows != [(p.label, p.a, p.b) for p in by_split[s]]:
                sys.exit(f"{path} does not round-trip")
        write_streams(args.out / "streams", events)
    print(report(events, by_split))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
