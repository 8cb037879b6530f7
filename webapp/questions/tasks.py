from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError as DatabaseOperationalError
from django.db import close_old_connections
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from embeddings.errors import FunctionError
from webapp.questions import lifecycle, processing

log = logging.getLogger(__name__)
# What a publish raises when the broker is down or went away mid-publish.
BROKER_ERRORS = (OperationalError, RedisError, ConnectionError, TimeoutError)


@shared_task(bind=True, acks_late=True, max_retries=None)
def process_question(self, question_id: int) -> None:
    """Embed, score and flag a question; retry transient function failures with backoff."""
    try:
        processing.process_question(question_id)
    except (FunctionError, DatabaseOperationalError) as exc:
        # A locked database or a lost connection is as transient as a function that is down.
        retryable = exc.retryable if isinstance(exc, FunctionError) else True
        if retryable and self.request.retries < settings.QUESTION_MAX_RETRIES:
            close_old_connections()
            lifecycle.sent(question_id)  # the retry is a new send
            countdown = min(2**self.request.retries, settings.QUESTION_RETRY_BACKOFF_MAX_S)
            raise self.retry(exc=exc, countdown=countdown) from exc
        lifecycle.failed(question_id, str(exc), retryable=retryable)


def enqueue(question_id: int) -> bool:
    """Send the processing task; False (logged) when the broker cannot take it.

    Without a broker (eager tasks) a thread of this process processes it (webapp/questions/inprocess.py).
    Never raises for a broker error: the question is already stored, and with ``enqueued_at``
    cleared the sweeper sends it as soon as it can. The publish retries are bounded by
    CELERY_TASK_PUBLISH_RETRY_POLICY, so a request never hangs on a dead broker.
    """
    if process_question.app.conf.task_always_eager:
        # No broker: a thread of this process takes it, and the request waits a bounded time.
        from webapp.questions import inprocess

        inprocess.submit_and_wait(question_id)
        return True
    try:
        process_question.apply_async((question_id,))
    except BROKER_ERRORS as exc:
        log.warning("question %s stored, but its task could not be sent (the sweeper will): %s", question_id, exc)
        lifecycle.send_failed(question_id)
        return False
    return True
