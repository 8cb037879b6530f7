"""Nothing lost: the database says which questions still need processing, and the sweeper sends them.

The broker is only a doorbell. Redis here keeps nothing on disk (a restart drops the queue), a
worker killed in the middle of a task leaves its message invisible until the visibility timeout,
and a publish can fail after the question was stored. Each question therefore carries
``enqueued_at``, the time its task was last sent (empty: the send failed), and the sweeper sends
again every question that is

- pending with no send on record, or pending ``QUESTION_RESEND_AFTER_S`` after its last send;
- failed for a transient reason (``retryable``) that long after its last send,

until it has been tried ``QUESTION_MAX_ATTEMPTS`` times; a pending question past that cap is marked
failed for a moderator to retry. Every send is claimed first with a conditional UPDATE on the
``enqueued_at`` it was read with, so two sweepers (every worker runs one) never send one question
twice for the same lapse. A second run would do no harm anyway: processing is idempotent.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F, Q
from django.utils import timezone

from webapp.questions import lifecycle
from webapp.questions.models import Question
from webapp.questions.tasks import enqueue

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    resent: int = 0  # pending questions sent again
    revived: int = 0  # transient failures sent again
    gave_up: int = 0  # pending questions past QUESTION_MAX_ATTEMPTS, now failed
    lost_claims: int = 0  # another sweeper claimed them first
    send_errors: int = 0  # the broker refused; still claimable on the next sweep

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def due(now: datetime | None = None, resend_after_s: float | None = None) -> Q:
    """The questions a sweep at ``now`` sends again (or gives up on)."""
    now = now or timezone.now()
    age = settings.QUESTION_RESEND_AFTER_S if resend_after_s is None else resend_after_s
    stale = now - timedelta(seconds=age)
    pending = Q(state=Question.State.PENDING) & (Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale))
    transient = Q(state=Question.State.FAILED, retryable=True, attempts__lt=settings.QUESTION_MAX_ATTEMPTS) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    )
    return pending | transient


def sweep(now: datetime | None = None, resend_after_s: float | None = None, limit: int | None = None) -> SweepResult:
    """Send again what the broker lost; one pass, oldest first."""
    now = now or timezone.now()
    limit = settings.QUESTION_SWEEP_BATCH if limit is None else limit
    result = SweepResult()
    rows = (
        Question.objects.filter(due(now, resend_after_s))
        .order_by(F("enqueued_at").asc(nulls_first=True), "id")  # failed sends first, then the oldest
        .values_list("id", "state", "enqueued_at", "attempts")[:limit]
    )
    for question_id, state, enqueued_at, attempts in rows:
        if state == Question.State.PENDING and attempts >= settings.QUESTION_MAX_ATTEMPTS:
            lifecycle.failed(
                question_id, f"gave up after {attempts} attempts (worker lost each time?)", retryable=False
            )
            result.gave_up += 1
            continue
        if not lifecycle.claim(question_id, state, enqueued_at, now):
            result.lost_claims += 1
            continue
        if not enqueue(question_id):
            result.send_errors += 1
        elif state == Question.State.FAILED:
            result.revived += 1
        else:
            result.resent += 1
    if result.resent or result.revived or result.gave_up or result.send_errors:
        log.info("sweep: %s", result.as_dict())
    return result


class Sweeper(threading.Thread):
    """Sweeps every ``interval`` seconds (with jitter, so workers do not sweep in step) until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="question-sweeper", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval * random.uniform(0.5, 1.0)):
            close_old_connections()
            try:
                sweep()
            except Exception:
                # The database or the broker is down: log it and try again on the next round.
                log.exception("sweep failed; trying again in %s s", self.interval)
                connection.close()
        connection.close()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        self.join(timeout)


_sweeper: Sweeper | None = None
_sweeper_lock = threading.Lock()


def start_sweeper(interval: float | None = None) -> Sweeper | None:
    """Start this process's sweeper (once); None when QUESTION_SWEEP_INTERVAL_S is 0."""
    global _sweeper
    interval = settings.QUESTION_SWEEP_INTERVAL_S if interval is None else interval
    if interval <= 0:
        return None
    with _sweeper_lock:
        if _sweeper is None or not _sweeper.is_alive():
            _sweeper = Sweeper(interval)
            _sweeper.start()
            log.info(
                "question sweeper running every %s s (resend after %s s)", interval, settings.QUESTION_RESEND_AFTER_S
            )
        return _sweeper


@worker_ready.connect
def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    """Each Celery worker sweeps now and then; atomic claims keep two workers from sending one question twice."""
    start_sweeper()


@worker_shutdown.connect
def _worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    stop_sweeper()


def stop_sweeper() -> None:
    global _sweeper
    with _sweeper_lock:
        if _sweeper is not None:
            _sweeper.stop()
            _sweeper = None
