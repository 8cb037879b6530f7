"""What happens to a question after it is stored: vectors, sentiment, duplicate flags."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from webapp.core.inference import functions
from webapp.events.models import Event
from webapp.questions.models import Flag, Question
from webapp.questions.similarity import find_matches

log = logging.getLogger(__name__)
FLAGS_PER_QUESTION = 3


def process_question(question_id: int) -> Question | None:
    """Embed, score and flag one question. Idempotent: a processed question is left alone.

    Raises the client's FunctionError when a function fails; the task decides whether to retry.
    """
    question = Question.objects.filter(pk=question_id).first()
    if question is None or question.state == Question.State.PROCESSED:
        return question
    Question.objects.filter(pk=question_id).update(attempts=F("attempts") + 1)
    # The slow calls happen outside any transaction and lock.
    calls = functions()
    vector = calls.embed([question.text])[0]
    mood = calls.sentiment([question.text])[0]

    with transaction.atomic():
        # Race: two paraphrases processed at once by two workers would each search the index
        # before the other's vector is stored, and neither would be flagged. Locking the event
        # row serialises search-and-store per event; the second waits, then sees the first.
        event = Event.objects.select_for_update().get(pk=question.event_id)
        question = Question.objects.select_for_update().get(pk=question_id)
        if question.state == Question.State.PROCESSED:
            return question
        # The best few matches are enough for a moderator; more would bury the queue.
        for match in find_matches(event, vector, exclude_id=question.pk, limit=FLAGS_PER_QUESTION):
            Flag.objects.get_or_create(
                question=question,
                matched=match.question,
                defaults={"kind": match.kind, "similarity": match.similarity},
            )
        question.vector = vector.astype("<f4").tobytes()
        question.vector_model = calls.embedding_model or "default"
        question.sentiment_label = mood.label
        question.sentiment_scores = mood.scores
        question.state = Question.State.PROCESSED
        question.processed_at = timezone.now()
        question.last_error = ""
        question.save()
    return question


def mark_failed(question_id: int, error: str) -> None:
    """Processing gave up: the question stays, visible to moderators as failed, with a retry button."""
    Question.objects.filter(pk=question_id).exclude(state=Question.State.PROCESSED).update(
        state=Question.State.FAILED, last_error=error[:2000]
    )
    log.warning("question %s failed processing: %s", question_id, error)
