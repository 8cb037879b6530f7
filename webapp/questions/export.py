"""CSV export of an event's questions with sentiment and flags (the dashboard link and the command)."""

from __future__ import annotations

import csv
from typing import TextIO

from webapp.events.models import Event
from webapp.questions.models import Flag, Question

COLUMNS = [
    "id",
    "created_at",
    "text",
    "name",
    "status",
    "state",
    "answered",
    "answer",
    "answered_at",
    "edited_at",
    "pinned",
    "votes",
    "merged_into",
    "sentiment",
    "negative",
    "neutral",
    "positive",
    "flags",
]


def _safe(value: str) -> str:
    """Spreadsheets run cells that start with = + - @ as formulas: quote them out."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_csv(event: Event, out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    flags: dict[int, list[str]] = {}
    for flag in Flag.objects.filter(question__event=event).order_by("question_id", "-similarity"):
        flags.setdefault(flag.question_id, []).append(
            f"{flag.kind}:{flag.matched_id}:{flag.similarity:.3f}:{flag.status}"
        )
    count = 0
    for q in Question.objects.for_event(event).order_by("created_at"):
        scores = q.sentiment_scores or {}
        writer.writerow(
            [
                q.pk,
                q.created_at.isoformat(),
                _safe(q.text),
                _safe(q.author_name),
                q.status,
                q.state,
                q.answered,
                _safe(q.answer),
                q.answered_at.isoformat() if q.answered_at else "",
                q.edited_at.isoformat() if q.edited_at else "",
                q.pinned,
                q.vote_count,
                q.merged_into_id or "",
                q.sentiment_label,
                scores.get("negative", ""),
                scores.get("neutral", ""),
                scores.get("positive", ""),
                " ".join(flags.get(q.pk, [])),
            ]
        )
        count += 1
    return count
