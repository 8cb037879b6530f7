"""The organisers' figures: plain functions over querysets, returned as JSON by the dashboard API.

Time bucketing and the JSON score ordering happen in Python rather than in SQL: the two databases
we run on (SQLite, PostgreSQL) disagree on date truncation and on ordering by a JSON key, and an
event holds thousands of questions at most.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from django.db.models import Count, QuerySet

from webapp.events.models import Event
from webapp.questions.models import Flag, Question

LABELS = ("negative", "neutral", "positive")
# Bucket widths the timeline may use, in seconds: the smallest that keeps it within MAX_BUCKETS.
BUCKET_STEPS_S = (60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
MAX_BUCKETS = 24
MOST_NEGATIVE = 5


def sentiment_distribution(questions: QuerySet[Question]) -> dict[str, int]:
    """How many questions got each sentiment label; ``unscored`` counts those not processed (yet)."""
    counts = dict.fromkeys(LABELS, 0) | {"unscored": 0}
    for row in questions.order_by().values("sentiment_label").annotate(n=Count("id")):
        label = row["sentiment_label"] if row["sentiment_label"] in LABELS else "unscored"
        counts[label] += row["n"]
    return counts


def _origin(first: datetime, step: int) -> float:
    # Buckets start on multiples of the step (10:05, 10:10...), which read well on an axis.
    return math.floor(first.timestamp() / step) * step


def bucket_seconds(first: datetime, last: datetime) -> int:
    """The narrowest bucket that covers ``first`` to ``last`` in at most MAX_BUCKETS aligned buckets."""
    for step in BUCKET_STEPS_S:
        if (last.timestamp() - _origin(first, step)) // step + 1 <= MAX_BUCKETS:
            return step
    return BUCKET_STEPS_S[-1]


def timeline(questions: QuerySet[Question], step: int | None = None) -> tuple[int, list[dict[str, Any]]]:
    """Questions per bucket from the first question to the last, empty buckets included.

    Each bucket has its ``count``, ``per_minute`` rate, the sentiment ``counts`` of its scored
    questions and their ``shares`` (None when no question in it is scored yet).
    """
    rows = list(questions.order_by("created_at").values_list("created_at", "sentiment_label"))
    if not rows:
        return step or BUCKET_STEPS_S[0], []
    first, last = rows[0][0], rows[-1][0]
    step = step or bucket_seconds(first, last)
    origin = _origin(first, step)
    size = int((last.timestamp() - origin) // step) + 1
    buckets = [{"count": 0, "counts": dict.fromkeys(LABELS, 0)} for _ in range(size)]
    for created_at, label in rows:
        bucket = buckets[int((created_at.timestamp() - origin) // step)]
        bucket["count"] += 1
        if label in LABELS:
            bucket["counts"][label] += 1
    out = []
    for i, bucket in enumerate(buckets):
        scored = sum(bucket["counts"].values())
        out.append(
            {
                "start": datetime.fromtimestamp(origin + i * step, tz=UTC).isoformat(),
                "count": bucket["count"],
                "per_minute": round(bucket["count"] * 60 / step, 3),
                "scored": scored,
                "counts": bucket["counts"],
                "shares": {k: round(v / scored, 4) for k, v in bucket["counts"].items()} if scored else None,
            }
        )
    return step, out


def most_negative(questions: QuerySet[Question], limit: int = MOST_NEGATIVE) -> list[dict[str, Any]]:
    """The questions with the highest negative score; merged ones are left to their original, and
    withdrawn ones to no one (their asker took them back)."""
    rows = (
        questions.exclude(sentiment_scores__isnull=True)
        .exclude(status__in=[Question.Status.MERGED, Question.Status.WITHDRAWN])
        .values("id", "text", "status", "vote_count", "sentiment_label", "sentiment_scores")
    )

    def negative(row: dict[str, Any]) -> float:
        scores = row["sentiment_scores"]
        return float(scores.get("negative", 0.0)) if isinstance(scores, dict) else 0.0

    ranked = sorted(rows, key=lambda row: (-negative(row), row["id"]))[:limit]
    return [
        {
            "id": row["id"],
            "text": row["text"],
            "status": row["status"],
            "votes": row["vote_count"],
            "label": row["sentiment_label"],
            "negative": round(negative(row), 4),
        }
        for row in ranked
    ]


def duplicate_figures(flags: QuerySet[Flag]) -> dict[str, Any]:
    """Flags raised and the moderators' verdicts on them.

    ``precision`` is merged / (merged + dismissed): how often a flag the model raised was a real
    duplicate in a moderator's eyes. None until a moderator has decided one.
    """
    by_status = dict.fromkeys(Flag.Status.values, 0)
    by_kind = dict.fromkeys(Flag.Kind.values, 0)
    for row in flags.order_by().values("status", "kind").annotate(n=Count("id")):
        by_status[row["status"]] = by_status.get(row["status"], 0) + row["n"]
        by_kind[row["kind"]] = by_kind.get(row["kind"], 0) + row["n"]
    decided = by_status["merged"] + by_status["dismissed"]
    return {
        "raised": sum(by_status.values()),
        "open": by_status["open"],
        "merged": by_status["merged"],
        "dismissed": by_status["dismissed"],
        "precision": round(by_status["merged"] / decided, 4) if decided else None,
        "kinds": by_kind,
    }


def dashboard(event: Event) -> dict[str, Any]:
    """Everything the dashboard page draws, for one event."""
    questions = Question.objects.for_event(event)
    step, buckets = timeline(questions)
    return {
        "event": {"code": event.code, "title": event.title, "open": event.is_open},
        "total": questions.count(),
        "sentiment": sentiment_distribution(questions),
        "bucket_seconds": step,
        "timeline": buckets,
        "most_negative": most_negative(questions),
        "duplicates": duplicate_figures(Flag.objects.filter(question__event=event)),
        "generated_at": datetime.now(tz=UTC).isoformat(),
    }
