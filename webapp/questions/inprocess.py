"""Processing without a broker (eager tasks, the embedded default): a few threads of the web process.

A question used to be processed inside the attendee's POST, its retries too: a function that never
answered held the POST for a minute, and twenty attendees posting at once on SQLite left questions
pending for good ("database is locked" was neither retried nor marked). Now the POST hands the
question to a small pool of threads and waits for it at most ``QUESTION_INLINE_WAIT_S``: a quick
processing is in the answer, a slow one is not waited for (the page's poll shows it later).

A thread makes one attempt per send. A locked database is retried a few times at once, with a
short backoff; a function that is down or slow marks the question failed for a transient reason,
and the sweeper, which the web process runs when there is no Celery worker (webapp/wsgi.py), sends
it again later, as it does for a Celery worker's question.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from django.conf import settings
from django.db import OperationalError, close_old_connections, connection

from embeddings.errors import FunctionError
from webapp.questions import lifecycle, processing

log = logging.getLogger(__name__)
# A locked database (SQLite's writer lock outlasting the busy timeout, a PostgreSQL deadlock) is
# tried again after these pauses before the question is left to the sweeper.
LOCKED_RETRY_PAUSES_S = (0.05, 0.2, 0.8)

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_queued: dict[int, Future] = {}


def submit(question_id: int) -> Future:
    """Process the question on a pool thread; a question already waiting there is not queued twice."""
    global _executor
    with _lock:
        if question_id in _queued:
            return _queued[question_id]
        if _executor is None:
            _executor = ThreadPoolExecutor(settings.QUESTION_INLINE_WORKERS, thread_name_prefix="question")
        future = _executor.submit(_run, question_id)
        _queued[question_id] = future
    future.add_done_callback(lambda _: _forget(question_id, future))
    return future


def submit_and_wait(question_id: int, timeout: float | None = None) -> bool:
    """Hand the question over and wait up to ``timeout`` (QUESTION_INLINE_WAIT_S); True when it finished."""
    timeout = settings.QUESTION_INLINE_WAIT_S if timeout is None else timeout
    future = submit(question_id)
    _release_connection()
    try:
        future.result(timeout=timeout)
    except FutureTimeout:
        return False
    return True


def finish(question_id: int, timeout: float = 120.0) -> None:
    """Wait for a question handed over here (a command that posts in order, as seed_demo); no-op otherwise."""
    with _lock:
        future = _queued.get(question_id)
    if future is not None:
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            log.warning("question %s still processing after %s s", question_id, timeout)


def _release_connection() -> None:
    """Give a pooled connection back while the request waits: the processing threads need one too.

    With 200 posts at once and a pool of 16 (PostgreSQL), the waiting requests held every
    connection while the threads they waited for queued for one (seen: 108 of 200 processed in
    30 s). The request takes a connection again when it reads the question.
    """
    if connection.settings_dict.get("OPTIONS", {}).get("pool") and not connection.in_atomic_block:
        connection.close()


def _forget(question_id: int, future: Future) -> None:
    with _lock:
        if _queued.get(question_id) is future:
            del _queued[question_id]


def _run(question_id: int) -> None:
    # This thread keeps its own database connection between questions; drop it when broken or old.
    close_old_connections()
    try:
        process_once(question_id)
    except Exception:
        # Never lose a question to an unexpected error: leave it to a moderator's retry.
        log.exception("question %s: processing raised", question_id)
        lifecycle.failed(question_id, "processing raised an unexpected error (see the log)", retryable=True)
    finally:
        if pending() > 1:
            close_old_connections()
        else:
            # Idle next: close this thread's connection (a test database cannot be dropped under it).
            connection.close()


def process_once(question_id: int) -> None:
    """One attempt; a locked database is retried at once, a function failure left to the sweeper."""
    for pause in (*LOCKED_RETRY_PAUSES_S, None):
        try:
            processing.process_question(question_id)
            return
        except OperationalError as exc:
            if pause is None:
                lifecycle.failed(question_id, f"database busy: {exc}", retryable=True)
                return
            log.info("question %s: %s; trying again in %s s", question_id, exc, pause)
            close_old_connections()
            time.sleep(pause)
        except FunctionError as exc:
            lifecycle.failed(question_id, str(exc), retryable=exc.retryable)
            return


def pending() -> int:
    """Questions handed over and not finished (for tests and the health page)."""
    with _lock:
        return len(_queued)


def shutdown(wait: bool = True) -> None:
    """Stop the pool (tests); the next submit starts a new one."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is not None:
        executor.shutdown(wait=wait)
