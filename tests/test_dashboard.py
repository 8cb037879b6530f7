"""The dashboard's figures (webapp.dashboard.stats) on hand-made questions with known times and scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from webapp.dashboard import stats
from webapp.events.models import Event
from webapp.questions.models import Flag, Question

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 5, 6, 10, 0, tzinfo=UTC)
SCORES = {
    "negative": {"negative": 0.8, "neutral": 0.15, "positive": 0.05},
    "neutral": {"negative": 0.1, "neutral": 0.8, "positive": 0.1},
    "positive": {"negative": 0.02, "neutral": 0.18, "positive": 0.8},
}


@pytest.fixture
def event() -> Event:
    return Event.create("Stats", code="STATS")


def add(event: Event, text: str, at: datetime, label: str = "", negative: float | None = None, **fields) -> Question:
    scores = dict(SCORES[label]) if label else None
    if scores is not None and negative is not None:
        scores["negative"] = negative
    question = Question.objects.create(
        event=event, text=text, attendee="a", sentiment_label=label, sentiment_scores=scores, **fields
    )
    # created_at is auto_now_add: set the time afterwards.
    Question.objects.filter(pk=question.pk).update(created_at=at)
    return question


@pytest.mark.parametrize(
    ("first", "minutes", "step"),
    [
        (T0, 0, 60),
        (T0, 23, 60),
        (T0 + timedelta(seconds=59), 23.5, 120),  # 24 aligned minutes would need 25 buckets
        (T0, 24, 120),
        (T0, 90, 300),
        (T0, 120, 600),
        (T0, 60 * 24 * 3, 14400),
    ],
)
def test_bucket_width_adapts_to_the_span(first: datetime, minutes: float, step: int):
    assert stats.bucket_seconds(first, first + timedelta(minutes=minutes)) == step


def test_timeline_counts_rates_and_shares_per_bucket(event: Event):
    add(event, "a", T0 + timedelta(seconds=10), "negative")
    add(event, "b", T0 + timedelta(seconds=50), "positive")
    add(event, "c", T0 + timedelta(minutes=2, seconds=30), "neutral")
    add(event, "d", T0 + timedelta(minutes=2, seconds=40))  # not scored yet
    add(Event.create("Elsewhere", code="ELSE"), "other event", T0, "negative")
    step, buckets = stats.timeline(Question.objects.for_event(event))
    assert step == 60
    assert [b["start"] for b in buckets] == [
        "2025-05-06T10:00:00+00:00",
        "2025-05-06T10:01:00+00:00",
        "2025-05-06T10:02:00+00:00",
    ]
    assert [b["count"] for b in buckets] == [2, 0, 2]
    assert [b["per_minute"] for b in buckets] == [2.0, 0.0, 2.0]
    assert buckets[0]["shares"] == {"negative": 0.5, "neutral": 0.0, "positive": 0.5}
    assert buckets[1]["shares"] is None
    assert buckets[2]["shares"] == {"negative": 0.0, "neutral": 1.0, "positive": 0.0}
    assert buckets[2]["scored"] == 1


def test_rate_is_per_minute_in_wider_buckets(event: Event):
    for i in range(10):
        add(event, f"q{i}", T0 + timedelta(seconds=20 * i))
    add(event, "late", T0 + timedelta(minutes=40))
    step, buckets = stats.timeline(Question.objects.for_event(event))
    assert step == 120 and len(buckets) == 21
    assert buckets[0]["count"] == 6 and buckets[0]["per_minute"] == 3.0
    assert buckets[1]["count"] == 4 and buckets[-1]["count"] == 1


def test_an_event_without_questions_has_an_empty_timeline(event: Event):
    assert stats.timeline(Question.objects.for_event(event)) == (60, [])
    assert stats.sentiment_distribution(Question.objects.for_event(event)) == {
        "negative": 0,
        "neutral": 0,
        "positive": 0,
        "unscored": 0,
    }


def test_distribution_counts_labels(event: Event):
    for label in ("negative", "negative", "neutral", "positive", ""):
        add(event, "q", T0, label)
    assert stats.sentiment_distribution(Question.objects.for_event(event)) == {
        "negative": 2,
        "neutral": 1,
        "positive": 1,
        "unscored": 1,
    }


def test_most_negative_ranks_by_negative_score_and_skips_merged_and_withdrawn(event: Event):
    original = add(event, "mild", T0, "neutral", negative=0.3)
    add(event, "angry", T0, "negative", negative=0.95)
    add(event, "angry twin", T0, "negative", negative=0.99, status=Question.Status.MERGED, merged_into=original)
    add(event, "taken back", T0, "negative", negative=0.98, status=Question.Status.WITHDRAWN)
    add(event, "sad", T0, "negative", negative=0.7)
    add(event, "happy", T0, "positive")
    add(event, "unscored", T0)
    for i in range(3):
        add(event, f"meh {i}", T0, "neutral", negative=0.2)
    rows = stats.most_negative(Question.objects.for_event(event))
    assert [(r["text"], r["negative"]) for r in rows] == [
        ("angry", 0.95),
        ("sad", 0.7),
        ("mild", 0.3),
        ("meh 0", 0.2),
        ("meh 1", 0.2),
    ]


def test_duplicate_figures_and_precision(event: Event):
    assert stats.duplicate_figures(Flag.objects.all()) == {
        "raised": 0,
        "open": 0,
        "merged": 0,
        "dismissed": 0,
        "precision": None,
        "kinds": {"duplicate": 0, "related": 0},
    }
    questions = [add(event, f"q{i}", T0) for i in range(5)]
    verdicts = [("merged", "duplicate"), ("merged", "duplicate"), ("dismissed", "related"), ("open", "related")]
    for question, (status, kind) in zip(questions[1:], verdicts, strict=True):
        Flag.objects.create(question=question, matched=questions[0], kind=kind, similarity=0.7, status=status)
    figures = stats.duplicate_figures(Flag.objects.filter(question__event=event))
    assert figures == {
        "raised": 4,
        "open": 1,
        "merged": 2,
        "dismissed": 1,
        "precision": 0.6667,
        "kinds": {"duplicate": 2, "related": 2},
    }


def test_dashboard_puts_it_together(event: Event):
    add(event, "q", T0, "negative")
    data = stats.dashboard(event)
    assert data["event"] == {"code": "STATS", "title": "Stats", "open": True}
    assert data["total"] == 1 and data["bucket_seconds"] == 60 and len(data["timeline"]) == 1
    assert data["most_negative"][0]["text"] == "q" and data["duplicates"]["precision"] is None
