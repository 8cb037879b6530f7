"""Flag quality on whole events: replay labelled streams of questions through the app's own path.

A stream file is TSV with the header ``event order cluster topic text``: each event's questions in
posting order. Two questions of one cluster are duplicates (a moderator would merge them); two of one
topic and different clusters are related (worth a look); anything else is unrelated. Cluster and topic
names are scoped to their event; an empty topic puts the cluster in a topic of its own.

Each event is posted, question by question, into a fresh throw-away event through
``actions.submit_question`` (stored, then processed after commit: embedding, index, thresholds, flag
policy, merge targets), and the flags the moderators would see are scored:

- duplicate-flag precision: duplicate flags that point into the question's own cluster;
- duplicate recall: questions with an earlier question of their cluster that got such a flag;
- related-flag precision: related flags that point into the question's topic;
- flags per question, and the share of flagged questions whose first flag is right.

Besides the flags raised, each question's ranked candidates are kept, so that the same policy
(``similarity.choose_flags``) can be scored at other thresholds: the precision/recall curve, and the
calibration of the thresholds for the moderator's cost (``calibrate``).
"""

from __future__ import annotations

import csv
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction

from embeddings.cards import Thresholds
from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import MAX_QUESTION_CHARS, Flag, Question
from webapp.questions.similarity import candidates, choose_flags, thresholds_for

HEADER = ["event", "order", "cluster", "topic", "text"]
# The moderator's cost: a duplicate flag must almost always be right; a related flag at least
# usually worth a look, or it is not raised (docs/models.md).
DUPLICATE_PRECISION_TARGET = 0.85
RELATED_PRECISION_TARGET = 0.70
# A threshold is trusted only where it keeps its precision with this many flags or more above it.
MIN_FLAGS_FOR_PRECISION = 20


class StreamError(ValueError):
    """A malformed stream file; the message starts with ``FILE:LINE:``."""


@dataclass(frozen=True)
class Posted:
    """One question of a stream, labelled."""

    event: str
    order: int
    cluster: str
    topic: str
    text: str


def read_streams(path: Path) -> dict[str, list[Posted]]:
    """The events of a stream file, each in posting order; StreamError names the file and line."""
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    except (OSError, UnicodeDecodeError) as exc:
        raise StreamError(f"{path}: cannot read: {exc}") from None
    if not rows or rows[0] != HEADER:
        raise StreamError(f"{path}:1: the header must be {' / '.join(HEADER)} (tab-separated)")
    events: dict[str, list[Posted]] = {}
    topic_of: dict[tuple[str, str], str] = {}
    for line, row in enumerate(rows[1:], start=2):
        where = f"{path}:{line}"
        if len(row) != len(HEADER):
            raise StreamError(f"{where}: {len(row)} fields, expected {len(HEADER)} (tab-separated)")
        event, order, cluster, topic, text = (cell.strip() for cell in row)
        if not event or not cluster:
            raise StreamError(f"{where}: event and cluster must not be empty")
        if not order.isdigit() or int(order) < 1:
            raise StreamError(f"{where}: order must be a positive whole number, got {order!r}")
        if not text or len(text) > MAX_QUESTION_CHARS:
            raise StreamError(f"{where}: text must be 1 to {MAX_QUESTION_CHARS} characters, got {len(text)}")
        earlier = events.setdefault(event, [])
        if earlier and int(order) <= earlier[-1].order:
            raise StreamError(f"{where}: order {order} of event {event!r} does not follow {earlier[-1].order}")
        topic = topic or f"cluster:{cluster}"
        if topic_of.setdefault((event, cluster), topic) != topic:
            raise StreamError(
                f"{where}: cluster {cluster!r} of event {event!r} is also in topic {topic_of[(event, cluster)]!r}"
            )
        earlier.append(Posted(event, int(order), cluster, topic, text))
    if not events:
        raise StreamError(f"{path}:2: no questions")
    return events


@dataclass
class Outcome:
    """What one question of a stream got: its flags, and its ranked candidates for other thresholds."""

    posted: Posted
    has_duplicate: bool  # an earlier question of its cluster exists
    has_related: bool  # an earlier question of its topic exists
    flags: list[tuple[str, Posted, float]]  # (kind, the question it points to, similarity), as raised
    ranked: list[tuple[Posted, float]]  # candidates, best first

    def right(self, kind: str, target: Posted) -> bool:
        if kind == "duplicate":
            return target.cluster == self.posted.cluster
        return target.topic == self.posted.topic


@dataclass
class Replay:
    """One event replayed: its outcomes in posting order."""

    event: str
    outcomes: list[Outcome] = field(default_factory=list)


def replay_event(name: str, stream: list[Posted], verdicts_until: int = 0) -> Replay:
    """Post ``stream`` into a throw-away event in order; its rows are deleted afterwards.

    With ``verdicts_until`` N, a moderator decides every flag of the first N questions as they come
    (merges right duplicate flags, dismisses wrong ones), then the event's thresholds are calibrated
    from those verdicts (``calibrate_thresholds --event``) before the rest is posted.
    """
    from webapp.questions.management.commands.calibrate_thresholds import event_thresholds

    event = Event.create(f"replay of {name}"[:200])
    moderator = get_user_model().objects.create_user(f"replay-{secrets.token_hex(6)}")
    try:
        replay = Replay(name)
        posted_as: dict[int, Posted] = {}
        for i, posted in enumerate(stream):
            question = actions.submit_question(event, posted.text, attendee=f"replay-{i}")
            question.refresh_from_db()
            posted_as[question.pk] = posted
            replay.outcomes.append(_outcome(event, question, posted, stream[:i], posted_as))
            if i < verdicts_until:
                _decide(question, posted_as, moderator)
            if verdicts_until and i + 1 == verdicts_until:
                try:
                    event_thresholds(event, write=True)
                except CommandError:  # no verdicts of both kinds yet: the card's thresholds stay
                    pass
                event.refresh_from_db()
        return replay
    finally:
        with transaction.atomic():
            event.delete()
            moderator.delete()


def _outcome(
    event: Event, question: Question, posted: Posted, earlier: list[Posted], posted_as: dict[int, Posted]
) -> Outcome:
    if question.state != Question.State.PROCESSED:
        raise RuntimeError(f"question {posted.text!r} was not processed: {question.state} {question.last_error}")
    flags = Flag.objects.filter(question=question).order_by("-similarity")
    ranked = candidates(event, question.embedding(), exclude_id=question.pk)
    return Outcome(
        posted,
        has_duplicate=any(p.cluster == posted.cluster for p in earlier),
        has_related=any(p.topic == posted.topic for p in earlier),
        flags=[(f.kind, posted_as[f.matched_id], f.similarity) for f in flags],
        ranked=[(posted_as[c.question.pk], c.similarity) for c in ranked],
    )


def _decide(question: Question, posted_as: dict[int, Posted], moderator) -> None:
    """A moderator who knows the labels: merge right duplicates, dismiss what is not worth a look."""
    posted = posted_as[question.pk]
    for flag in Flag.objects.filter(question=question, status=Flag.Status.OPEN).select_related("question", "matched"):
        target = posted_as[flag.matched_id]
        if flag.kind == Flag.Kind.DUPLICATE and target.cluster == posted.cluster:
            actions.merge_flag(flag, moderator)
        elif target.topic != posted.topic or flag.kind == Flag.Kind.DUPLICATE:
            actions.dismiss_flag(flag, moderator)


def score(outcomes: Iterable[Outcome]) -> dict[str, float | int | None]:
    """The moderator's view of a set of outcomes (one event's or all of them)."""
    outcomes = list(outcomes)
    dup = [(o, t) for o in outcomes for kind, t, _ in o.flags if kind == "duplicate"]
    rel = [(o, t) for o in outcomes for kind, t, _ in o.flags if kind == "related"]
    dup_right = sum(o.right("duplicate", t) for o, t in dup)
    rel_right = sum(o.right("related", t) for o, t in rel)
    with_dup = [o for o in outcomes if o.has_duplicate]
    found = sum(any(k == "duplicate" and o.right(k, t) for k, t, _ in o.flags) for o in with_dup)
    flagged = [o for o in outcomes if o.flags]
    first_right = sum(o.right(o.flags[0][0], o.flags[0][1]) for o in flagged)
    return {
        "questions": len(outcomes),
        "duplicate_flags": len(dup),
        "duplicate_precision": _ratio(dup_right, len(dup)),
        "duplicate_recall": _ratio(found, len(with_dup)),
        "related_flags": len(rel),
        "related_precision": _ratio(rel_right, len(rel)),
        "flags_per_question": _ratio(len(dup) + len(rel), len(outcomes)),
        "first_flag_right": _ratio(first_right, len(flagged)),
        "questions_with_earlier_duplicate": len(with_dup),
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def rescore(outcomes: list[Outcome], thresholds: Thresholds) -> dict[str, float | int | None]:
    """The figures the same policy would give at other thresholds, from the kept candidates."""
    again = [
        Outcome(o.posted, o.has_duplicate, o.has_related, choose_flags(o.ranked, thresholds), o.ranked)
        for o in outcomes
    ]
    return score(again)


def curve(outcomes: list[Outcome], steps: Iterable[float] | None = None) -> list[dict[str, float | int | None]]:
    """Duplicate-flag precision and recall at each duplicate threshold (related flags off)."""
    steps = steps if steps is not None else [round(0.3 + 0.01 * i, 2) for i in range(66)]
    points = []
    for t in steps:
        figures = rescore(outcomes, Thresholds(duplicate=t, related=t))
        points.append(
            {"threshold": t} | {k: figures[k] for k in ("duplicate_precision", "duplicate_recall", "duplicate_flags")}
        )
    return points


def calibrate(outcomes: list[Outcome]) -> dict[str, float | bool | None]:
    """Thresholds for the moderator's cost, from replayed outcomes (use the dev streams, never test).

    Duplicate: the lowest threshold from which duplicate-flag precision stays at or above its target.
    Related: with that duplicate threshold, the lowest from which related-flag precision stays at or
    above its target; when none does, related flags are off (related = duplicate).
    """
    steps = [round(0.3 + 0.005 * i, 3) for i in range(131)]
    duplicate = _lowest_holding(
        steps,
        lambda t: rescore(outcomes, Thresholds(duplicate=t, related=t)),
        "duplicate_precision",
        "duplicate_flags",
        DUPLICATE_PRECISION_TARGET,
    )
    if duplicate is None:
        return {"duplicate": None, "related": None, "related_flags": False}
    below = [t for t in steps if t < duplicate]
    related = _lowest_holding(
        below,
        lambda t: rescore(outcomes, Thresholds(duplicate=duplicate, related=t)),
        "related_precision",
        "related_flags",
        RELATED_PRECISION_TARGET,
    )
    return {
        "duplicate": duplicate,
        "related": related if related is not None else duplicate,
        "related_flags": related is not None,
    }


def _lowest_holding(steps: list[float], figures_at, precision: str, count: str, target: float) -> float | None:
    """The lowest step from which ``precision`` stays >= target wherever ``count`` is large enough to tell."""
    lowest = None
    for t in reversed(steps):
        figures = figures_at(t)
        if figures[count] < MIN_FLAGS_FOR_PRECISION:
            continue
        if figures[precision] is None or figures[precision] < target:
            break
        lowest = t
    return lowest


def thresholds_in_force() -> Thresholds:
    """The model card's thresholds (a fresh event has no overrides)."""
    return thresholds_for(Event(title="", code="X"))
