from __future__ import annotations

from celery import shared_task
from django.conf import settings

from embeddings.errors import FunctionError
from webapp.questions import processing


@shared_task(bind=True, acks_late=True, max_retries=None)
def process_question(self, question_id: int) -> None:
    """Embed, score and flag a question; retry transient function failures with backoff."""
    try:
        processing.process_question(question_id)
    except FunctionError as exc:
        if exc.retryable and self.request.retries < settings.QUESTION_MAX_RETRIES:
            raise self.retry(exc=exc, countdown=min(2**self.request.retries, 60)) from exc
        processing.mark_failed(question_id, str(exc))
