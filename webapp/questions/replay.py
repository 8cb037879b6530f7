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
import dataclasses
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandError
from django.db import transaction

from embeddings.cards import Thresholds
from webapp.core.inference import Verifier, verifier
from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import MAX_QUESTION_CHARS, Flag, Question
from webapp.questions.similarity import (
    DUPLICATE_PRECISION_TARGET,
    RELATED_PRECISION_TARGET,
    Reading,
    candidates,
    choose_flags,
    thresholds_for,
    verify_best,
)

HEADER = ["event", "order", "cluster", "topic", "text"]
# A threshold is trusted only where it keeps its precision with this many flags or more above it.
MIN_FLAGS_FOR_PRECISION = 20
# The verifier's gates the calibration tries (cosine of the best match, from which the pair is read).
GATES = (0.4, 0.45, 0.5, 0.55, 0.6, 0.65)


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
    reading: Reading | None = None  # the verifier on the best candidate, where it was read

    def right(self, kind: str, target: Posted) -> bool:
        if kind == "duplicate":
            return target.cluster == self.posted.cluster
        return target.topic == self.posted.topic


@dataclass
class Replay:
    """One event replayed: its outcomes in posting order."""

    event: str
    outcomes: list[Outcome] = field(default_factory=list)


def replay_event(name: str, stream: list[Posted], verdicts_until: int = 0, at: Thresholds | None = None) -> Replay:
    """Post ``stream`` into a throw-away event in order; its rows are deleted afterwards.

    With ``verdicts_until`` N, a moderator decides every flag of the first N questions as they come
    (merges right duplicate flags, dismisses wrong ones), then the event's thresholds are calibrated
    from those verdicts (``calibrate_thresholds --event``) before the rest is posted.
    """
    from webapp.questions.management.commands.calibrate_thresholds import event_thresholds

    overrides = {"duplicate_threshold": at.duplicate, "related_threshold": at.related} if at else {}
    event = Event.create(f"replay of {name}"[:200], **overrides)
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
    check = verifier()
    if check is not None:  # read down to the lowest gate the calibration tries
        check = dataclasses.replace(check, gate=min(check.gate, GATES[0]))
    readings = verify_best(question.text, ranked, check)
    return Outcome(
        posted,
        has_duplicate=any(p.cluster == posted.cluster for p in earlier),
        has_related=any(p.topic == posted.topic for p in earlier),
        flags=[(f.kind, posted_as[f.matched_id], f.similarity) for f in flags],
        ranked=[(posted_as[c.question.pk], c.similarity) for c in ranked],
        reading=next(iter(readings.values()), None),
    )


def _decide(question: Question, posted_as: dict[int, Posted], moderator) -> None:
    """A moderator who knows the labels: merge right duplicates, dismiss what is not worth a look."""
    posted = posted_as[question.pk]
    for flag in Flag.objects.filter(question=question, status=Flag.Status.OPEN).select_related("question", "matched"):
        target = posted_as[flag.matched_id]
        if target.cluster == posted.cluster:  # a related flag on a paraphrase gets merged too
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


@dataclass(frozen=True)
class Point:
    """An operating point: the cosine thresholds, and the verifier if one decides (its gate, score and veto)."""

    thresholds: Thresholds
    check: Verifier | None = None

    def verdict(self, o: Outcome) -> bool | None:
        """The verifier's decision on the best candidate, as processing takes it (None: the cosine decides)."""
        if self.check is None or o.reading is None or not o.ranked or o.ranked[0][1] < self.check.gate:
            return None
        return o.reading.is_duplicate(self.check)


def rescore(outcomes: list[Outcome], point: Point, policy=None) -> dict[str, float | int | None]:
    """The figures the same policy (or ``policy``) would give at another operating point, from the kept candidates."""
    again = [
        Outcome(
            o.posted,
            o.has_duplicate,
            o.has_related,
            policy(o.ranked, point.thresholds)
            if policy
            else choose_flags(o.ranked, point.thresholds, point.verdict(o)),
            o.ranked,
        )
        for o in outcomes
    ]
    return score(again)


# What shipped until 2026-12-04, kept to measure the change against: minilm-l6's thresholds then.
BEFORE = Thresholds(duplicate=0.56, related=0.32)


def flags_before(ranked: list[tuple[Posted, float]], thresholds: Thresholds) -> list[tuple[str, Posted, float]]:
    """The policy shipped until 2026-12-04: every candidate above the related threshold, up to three."""
    return [(thresholds.classify(s), q, s) for q, s in ranked[:3] if s >= thresholds.related]


def curve(outcomes: list[Outcome], point: Point | None = None) -> list[dict[str, float | int | None]]:
    """Duplicate-flag precision and recall as the deciding threshold moves (related flags off).

    Without a verifier that is the cosine threshold; with one (``point.check``), its score threshold.
    """
    points = []
    if point is None or point.check is None:
        for t in [round(0.3 + 0.01 * i, 2) for i in range(66)]:
            figures = rescore(outcomes, Point(Thresholds(duplicate=t, related=t)))
            points.append({"threshold": t} | _dup(figures))
        return points
    for t in [round(0.02 * i, 2) for i in range(1, 50)]:
        at = Point(Thresholds(duplicate=1.0, related=1.0), dataclasses.replace(point.check, duplicate=t))
        points.append({"threshold": t} | _dup(rescore(outcomes, at)))
    return points


def _dup(figures: dict[str, float | int | None]) -> dict[str, float | int | None]:
    return {k: figures[k] for k in ("duplicate_precision", "duplicate_recall", "duplicate_flags")}


def calibrate(outcomes: list[Outcome], check: Verifier | None = None) -> dict[str, Any]:
    """The operating point for the moderator's cost, from replayed outcomes (use the dev streams, never test).

    Duplicate: the lowest cosine threshold from which duplicate-flag precision stays at or above its
    target. With the verifier ``check`` (its model and weights): for each gate and veto, the lowest
    verifier score from which it stays there, and the one that finds the most duplicates. Related:
    then, the lowest cosine threshold from which related-flag precision stays at or above its
    target; when none does, related flags are off.
    """
    cosine_steps = [round(0.3 + 0.005 * i, 3) for i in range(131)]
    duplicate = _lowest_holding(
        cosine_steps,
        lambda t: rescore(outcomes, Point(Thresholds(duplicate=t, related=t))),
        "duplicate_precision",
        "duplicate_flags",
        DUPLICATE_PRECISION_TARGET,
    )
    if duplicate is None and check is None:
        return {"duplicate": None, "related": None, "related_flags": False}
    # With a verifier, the cosine alone decides only when the verifier cannot be read: never, if the
    # cosine alone never reaches the target.
    duplicate = duplicate if duplicate is not None else 1.0
    point = Point(Thresholds(duplicate=duplicate, related=duplicate))
    if check is not None:
        point = max(
            (
                _verifier_point(outcomes, duplicate, dataclasses.replace(check, gate=gate, veto=veto))
                for gate in GATES
                for veto in (False, True)
            ),
            key=lambda p: rescore(outcomes, p)["duplicate_recall"] or 0,
        )

    def with_related(t: float) -> Point:
        return dataclasses.replace(point, thresholds=Thresholds(duplicate=duplicate, related=t))

    related = _lowest_holding(
        [t for t in cosine_steps if t < duplicate],
        lambda t: rescore(outcomes, with_related(t)),
        "related_precision",
        "related_flags",
        RELATED_PRECISION_TARGET,
    )
    chosen = with_related(related if related is not None else duplicate)
    return {
        "duplicate": duplicate,
        "related": chosen.thresholds.related,
        "related_flags": related is not None,
        "verifier": {"gate": chosen.check.gate, "duplicate": chosen.check.duplicate, "veto": chosen.check.veto}
        if chosen.check is not None
        else None,
        "figures": rescore(outcomes, chosen),
    }


def _verifier_point(outcomes: list[Outcome], duplicate: float, check: Verifier) -> Point:
    steps = [round(0.01 * i, 2) for i in range(1, 100)]

    def at(t: float) -> Point:
        return Point(Thresholds(duplicate=duplicate, related=duplicate), dataclasses.replace(check, duplicate=t))

    lowest = _lowest_holding(
        steps, lambda t: rescore(outcomes, at(t)), "duplicate_precision", "duplicate_flags", DUPLICATE_PRECISION_TARGET
    )
    return at(lowest if lowest is not None else 1.0)


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


def point_in_force(at: Thresholds | None = None) -> Point:
    """The operating point of the model's card (or ``at``, as the replay's events override it) and its verifier."""
    return Point(at or thresholds_for(Event(title="", code="X")), verifier())
