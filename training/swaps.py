"""Slot swaps: hard negatives made by rule from the *train* events' pool texts.

The duplicate flags that go wrong with the highest scores are "the same ask about another slot":
the Pro plan's price against the Basic plan's, 2025 against 2026, the slides against the recording,
more against fewer. A swap changes one such slot word in a train text and leaves the rest alone,
so the pair (original, swapped) has almost the same words and another ask: a related pair, and a
hard negative for the original's paraphrases.

    python -m training.swaps            # counts per rule and a few examples

Deterministic: each text draws its replacements from its own seeded generator, so adding an event
changes no other text's swaps. Only train events are read; a swap whose text (after
normalisation) is any dev or test text, or a paraphrase of the original, is dropped.
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from training.corpora import load_pool_builder

SEED = "swaps-v1"

# Each group is a set of interchangeable slot values; a word of a group is replaced by another.
GROUPS: dict[str, tuple[tuple[str, ...], ...]] = {
    "weekday": (("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),),
    "month": (("january", "february", "march", "april", "june", "july", "august", "september", "october", "november"),),
    "time_of_day": (("morning", "afternoon", "evening"), ("today", "tomorrow", "tonight")),
    "period": (("this", "next", "last"),),  # only before year/month/week/quarter/season: see PATTERNS
    "tier": (("basic", "starter", "pro", "premium", "enterprise", "family", "student"),),
    "quarter": (("q1", "q2", "q3", "q4"),),
    # The talk's materials: a word of one group is replaced by a word of the other.
    "slides_recording": (("slides", "deck"), ("recording", "video")),
}
# Slides and recording are slots only where the talk's materials are asked about.
MATERIALS = re.compile(
    r"\b(?:talk|session|webinar|lecture|presentation|keynote|shared?|post(?:ed|ing)?|available|upload(?:ed)?|"
    r"afterwards|later|copy|missed)\b",
    re.IGNORECASE,
)
# Direction words swap with their opposite.
OPPOSITES = {
    "higher": "lower",
    "more": "less",
    "fewer": "more",
    "increase": "decrease",
    "increases": "decreases",
    "increased": "decreased",
    "rise": "fall",
    "before": "after",
    "earlier": "later",
    "faster": "slower",
    "cheaper": "pricier",
    "open": "close",
    "opening": "closing",
    "opens": "closes",
    "start": "end",
    "first": "last",
    "minimum": "maximum",
    "cause": "fix",
    "caused": "fixed",
    "causes": "fixes",
}
OPPOSITES |= {b: a for a, b in list(OPPOSITES.items()) if b not in OPPOSITES}

_PERIOD = r" (?:year|month|week|quarter|season|term|semester)\b"
_PERIOD_NOUN = f"(?={_PERIOD})"
PATTERNS: dict[str, re.Pattern[str]] = {
    "year": re.compile(r"\b(?:19|20)\d\d\b"),
    "number": re.compile(r"(?<![\w.,$£€])\d{1,3}(?![\w.,])"),
    "direction": re.compile(
        r"\b(?:" + "|".join(sorted(OPPOSITES, key=len, reverse=True)) + r")\b(?![- ]source)" + f"(?!{_PERIOD})",
        re.IGNORECASE,
    ),
    "period": re.compile(r"\b(?:this|next|last)\b" + _PERIOD_NOUN, re.IGNORECASE),
    # Plan words that have other senses ("pro rata", an insurance "premium") only before a plan word.
    "tier": re.compile(
        r"\b(?:basic|starter|pro|premium|enterprise|family|student)\b(?= (?:plan|tier|version|subscription|account|"
        r"membership|ticket|pass|users?)\b)|\bpro\b(?![- ]?rat)|\benterprise\b",
        re.IGNORECASE,
    ),
}
for _rule in ("weekday", "month", "time_of_day", "quarter", "slides_recording"):
    _words = [w for group in GROUPS[_rule] for w in group]
    PATTERNS[_rule] = re.compile(r"\b(?:" + "|".join(_words) + r")\b", re.IGNORECASE)
RULES = tuple(PATTERNS)


@dataclass(frozen=True)
class Swap:
    original: str
    swapped: str
    rule: str
    event: str
    cluster: tuple[int, int]  # (topic, index) in the event


def same_case(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    return word.capitalize() if like[:1].isupper() else word


def replacement(rule: str, word: str, rng: random.Random) -> str:
    """Another value for ``word`` in the slot ``rule``."""
    if rule == "year":
        return str(int(word) + rng.choice((-1, 1)))
    if rule == "number":
        n = int(word)
        return str(rng.choice([m for m in (n + 1, n * 2, max(1, n // 2), n + 10) if m != n]))
    if rule == "direction":
        return same_case(OPPOSITES[word.lower()], word)
    group = next(g for g in GROUPS[rule] if word.lower() in g)
    if rule == "slides_recording":
        group = (*next(g for g in GROUPS[rule] if word.lower() not in g), word.lower())
    return same_case(rng.choice([w for w in group if w != word.lower()]), word)


def swap_text(text: str, rule: str, rng: random.Random) -> str | None:
    """``text`` with one ``rule`` slot (drawn at random among its matches) given another value."""
    matches = [m for m in PATTERNS[rule].finditer(text) if rule != "number" or not 1900 <= int(m.group()) <= 2099]
    if not matches or (rule == "slides_recording" and not MATERIALS.search(text)):
        return None
    m = rng.choice(matches)
    return text[: m.start()] + replacement(rule, m.group(), rng) + text[m.end() :]


def event_swaps(event: Any, seed: str, normalize: Callable[[str], str], banned: set[str]) -> list[Swap]:
    """Every rule's swap (at most one per rule) of every text of one event's pool."""
    swaps = []
    for cluster in event.clusters:
        paraphrases = {normalize(t) for t in cluster.texts}
        for text in cluster.texts:
            rng = random.Random(f"{seed}:{text}")
            for rule in RULES:
                swapped = swap_text(text, rule, rng)
                if swapped is None or normalize(swapped) in paraphrases | banned:
                    continue
                swaps.append(Swap(text, swapped, rule, event.id, (cluster.topic, cluster.index)))
    return swaps


def make_swaps(
    events: Iterable[Any], held_out: set[str], normalize: Callable[[str], str], seed: str = SEED
) -> list[Swap]:
    """The swaps of the given (train) events; ``held_out`` holds the normalised dev and test texts."""
    swaps = []
    for event in sorted(events, key=lambda e: e.id):
        if event.split != "train":
            raise ValueError(f"{event.id} is a {event.split} event: swaps come from train events only")
        swaps += event_swaps(event, seed, normalize, held_out)
    return swaps


def train_swaps(seed: str = SEED) -> list[Swap]:
    """The swaps of the train events of ``data/event_pairs`` (split as ``build.py`` assigns it)."""

    build = load_pool_builder()
    events = build.load_all_events()
    build.validate_pools(events)
    build.assign_splits(events)
    held_out = {build.normalize(t) for e in events if e.split != "train" for c in e.clusters for t in c.texts}
    return make_swaps([e for e in events if e.split == "train"], held_out, build.normalize, seed)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.swaps", description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=3, help="examples printed per rule")
    args = parser.parse_args(argv)
    swaps = train_swaps()
    counts = Counter(s.rule for s in swaps)
    print(f"{len(swaps)} swaps of {len({s.original for s in swaps})} train texts")
    for rule in RULES:
        print(f"{rule}: {counts[rule]}")
        for s in [s for s in swaps if s.rule == rule][: args.examples]:
            print(f"    {s.original!r} -> {s.swapped!r}")


if __name__ == "__main__":
    main()
