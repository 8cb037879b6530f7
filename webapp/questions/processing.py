"""What happens to a question after it is stored: vectors, sentiment, duplicate flags."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from webapp.core.inference import embedding_model, functions
from webapp.events.models import Event
from webapp.questions import lifecycle
from webapp.questions.models import Flag, Question
from webapp.questions.similarity import flags_for, pre_verify

log = logging.getLogger(__name__)


def process_question(question_id: int) -> Question | None:
    """Embed, score and flag one question. Idempotent: a processed question is left alone.

    Raises the client's FunctionError when a function fails; the task decides whether to retry.
    Stores where the time went in ``timings`` (milliseconds; for benchmarks and admins, not attendees):
    ``queue`` (last send to start), ``embed``, ``sentiment``, ``verify`` (the pair reader on the best
    match, outside the lock), ``lock`` (waiting for the event's row),
    ``index`` (bringing the FAISS index level and searching it), ``db`` (the other queries) and
    ``total`` (start to the final write).
    """
    clock = Clock()
    started_at = timezone.now()
    question = Question.objects.filter(pk=question_id).first()
    if question is None or question.state == Question.State.PROCESSED:
        return question
    lifecycle.started(question_id)
    timings = {"queue": ms((started_at - (question.enqueued_at or question.created_at)).total_seconds())}
    timings["db"] = clock.lap()
    # The slow calls happen outside any transaction and lock.
    calls = functions()
    vector = calls.embed([question.text])[0]
    timings["embed"] = clock.lap()
    mood = calls.sentiment([question.text])[0]
    timings["sentiment"] = clock.lap()
    checked = pre_verify(question.event, question.text, vector, exclude_id=question.pk)
    timings["verify"] = clock.lap()

    with transaction.atomic():
        # Race: two paraphrases processed at once by two workers would each search the index
        # before the other's vector is stored, and neither would be flagged. Locking the event
        # row serialises search-and-store per event; the second waits, then sees the first.
        event = Event.objects.select_for_update().get(pk=question.event_id)
        timings["lock"] = clock.lap()
        embedded_text = question.text
        question = Question.objects.select_for_update().get(pk=question_id)
        if question.state == Question.State.PROCESSED:
            return question
        if question.text != embedded_text:
            # Race: its asker edited it while the functions read the old text; the edit sent a
            # task of its own, which reads the new one.
            return question
        timings["db"] += clock.lap()
        matches = flags_for(event, vector, exclude_id=question.pk, checked=checked)
        timings["index"] = clock.lap()
        for match in matches:
            Flag.objects.get_or_create(
                question=question,
                matched=match.question,
                defaults={"kind": match.kind, "similarity": match.similarity},
            )
        timings["db"] += clock.lap()
        timings["total"] = clock.total()
        lifecycle.processed(question, event, vector, embedding_model(), mood, timings)
    return question


class Clock:
    """Milliseconds since the last lap, and since the start."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def lap(self) -> float:
        now = time.perf_counter()
        elapsed, self.last = now - self.last, now
        return ms(elapsed)

    def total(self) -> float:
        return ms(time.perf_counter() - self.start)


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)
