"""A question's processing lifecycle: every write of its state, send time and attempts, in one place.

    stored: pending, enqueued_at = now (the model's default; the task is sent after commit)
    send failed (the broker refused)        -> enqueued_at empty: the sweeper sends it first
    sent again (a retry, the sweeper)       -> enqueued_at = now
    started                                 -> attempts + 1
    processed                               -> processed, with its vector, model, sentiment, timings
    failed                                  -> failed, last_error, retryable (transient: sent again)
    retried (a moderator, the sweeper)      -> pending again
    edited (its asker changed the text)     -> pending again, without vector, sentiment or attempts

``enqueued_at`` is the time the task was last sent: the sweeper (recovery.py) sends again what is
still pending long after it, and what failed for a transient reason. Each change a page shows
bumps the event's live version (live.py).
"""

from __future__ import annotations

import logging
from datetime import datetime

import numpy as np
from django.db.models import F
from django.utils import timezone

from webapp.events.models import Event
from webapp.questions import live
from webapp.questions.models import Question, vector_bytes

log = logging.getLogger(__name__)
State = Question.State


def sent(question_id: int) -> None:
    """A task was sent again (a retry's countdown starts now): the sweeper counts its age from here."""
    Question.objects.filter(pk=question_id).update(enqueued_at=timezone.now())


def send_failed(question_id: int) -> None:
    """The broker refused the task: an empty send time puts it first in the sweeper's next round."""
    Question.objects.filter(pk=question_id, state=State.PENDING).update(enqueued_at=None)


def claim(question_id: int, state: str, enqueued_at: datetime | None, now: datetime) -> bool:
    """Take the right to send one question again: True for exactly one of several concurrent claimers."""
    # Race: every worker sweeps; both may read the same stale row. The UPDATE matches only while
    # the row still holds what this sweeper read, so the first one to write wins.
    rows = Question.objects.filter(pk=question_id, state=state)
    rows = rows.filter(enqueued_at__isnull=True) if enqueued_at is None else rows.filter(enqueued_at=enqueued_at)
    return rows.update(state=State.PENDING, enqueued_at=now) == 1


def retried(question: Question) -> bool:
    """A moderator's retry of a failed question: pending again, sent now; False when it was not failed."""
    updated = Question.objects.filter(pk=question.pk, state=State.FAILED).update(
        state=State.PENDING, last_error="", enqueued_at=timezone.now()
    )
    if updated:
        live.changed(question.event.code)
    return bool(updated)


def edited(question: Question, text: str) -> None:
    """Its asker changed the text: everything computed from the old text goes, and it is sent now.

    ``question`` is locked by the caller, inside its transaction; the caller sends the task after
    commit. A worker still busy with the old text drops its result (processing.py compares texts).
    """
    question.text = text
    question.edited_at = timezone.now()
    question.state = State.PENDING
    question.enqueued_at = question.edited_at
    question.attempts = 0
    question.last_error = ""
    question.retryable = False
    question.processed_at = None
    question.vector = None
    question.vector_model = ""
    question.sentiment_label = ""
    question.sentiment_scores = None
    question.timings = None
    question.save()
    live.changed(question.event.code)


def started(question_id: int) -> None:
    Question.objects.filter(pk=question_id).update(attempts=F("attempts") + 1)


def processed(
    question: Question, event: Event, vector: np.ndarray, model: str, mood, timings: dict[str, float]
) -> None:
    """Store the outcome on ``question`` (locked by the caller, inside its transaction)."""
    question.vector = vector_bytes(vector)
    question.vector_model = model
    question.sentiment_label = mood.label
    question.sentiment_scores = mood.scores
    question.state = State.PROCESSED
    question.processed_at = timezone.now()
    question.last_error = ""
    question.retryable = False
    question.timings = timings
    question.save()
    live.changed(event.code)


def failed(question_id: int, error: str, retryable: bool = False) -> None:
    """Processing gave up: the question stays, visible to moderators as failed, with a retry button.

    A ``retryable`` failure (the functions were slow or down) is sent again by the sweeper later.
    """
    updated = (
        Question.objects.filter(pk=question_id)
        .exclude(state=State.PROCESSED)
        .update(state=State.FAILED, last_error=error[:2000], retryable=retryable)
    )
    code = Event.objects.filter(questions__pk=question_id).values_list("code", flat=True).first()
    if updated and code:
        live.changed(code)
    log.warning("question %s failed processing: %s", question_id, error)
