"""Processing through a real Redis broker and real Celery workers (in-thread, as TESTING.md shows)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.db import connection
from django.test import Client

from webapp.celery import app
from webapp.core import inference
from webapp.events.models import Event
from webapp.questions import processing
from webapp.questions.models import Flag, Question

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def broker() -> Iterator[None]:
    """Tasks leave the web process through Redis, as in production."""
    redis.Redis.from_url(REDIS_URL).flushdb()
    app.conf.update(broker_url=REDIS_URL, task_always_eager=False)
    # Drop connections and producers made for the previous (eager, in-memory) configuration.
    app._pool = None
    app.amqp._producer_pool = None
    yield
    app.conf.update(broker_url="memory://", task_always_eager=True)
    app._pool = None
    app.amqp._producer_pool = None
    redis.Redis.from_url(REDIS_URL).flushdb()


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def ask(client: Client, text: str) -> int:
    if "attendee" not in client.cookies:
        client.get("/e/LIVE/")  # the attendee identity the event page gives
    response = client.post("/api/events/LIVE/questions", json.dumps({"text": text}), content_type="application/json")
    assert response.status_code == 201
    return response.json()["id"]


def test_question_waits_in_redis_until_a_worker_processes_it(broker):
    Event.create("Live", code="LIVE")
    qid = ask(Client(), "Will the slides be shared after the talk?")
    assert Question.objects.get(pk=qid).state == "pending"  # no worker yet: queued, not lost
    assert redis.Redis.from_url(REDIS_URL).llen("celery") == 1
    with start_worker(app, pool="solo", perform_ping_check=False, hostname="w1@test"):
        wait_until(lambda: Question.objects.get(pk=qid).state == "processed")
    assert Question.objects.get(pk=qid).sentiment_label


@pytest.mark.skipif(connection.vendor == "sqlite", reason="two workers writing at once need PostgreSQL")
def test_two_paraphrases_processed_at_once_are_flagged_against_each_other(broker, monkeypatch):
    """Two tasks run at the same moment (a worker with two execution threads, each with its own
    database connection): both embed before either stores its vector, and the per-event lock must
    still pair them. Two embedded workers cannot share one test process (Celery's shutdown state is
    global), so the concurrency comes from the threads pool."""
    Event.create("Live", code="LIVE")
    barrier = threading.Barrier(2, timeout=20)
    real = inference.functions()

    class BothEmbedFirst:
        embedding_model = real.embedding_model

        def embed(self, texts):
            vectors = real.embed(texts)
            barrier.wait()  # neither worker goes on until both have their vectors
            return vectors

        def sentiment(self, texts):
            return real.sentiment(texts)

    monkeypatch.setattr(processing, "functions", lambda: BothEmbedFirst())
    first = ask(Client(), "Will the slides be shared after the talk?")
    second = ask(Client(), "Are you going to share the slides afterwards?")
    with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False, hostname="w2@test"):
        wait_until(lambda: Question.objects.filter(state="processed").count() == 2)
    assert barrier.n_waiting == 0 and not barrier.broken
    pairs = {(f.question_id, f.matched_id) for f in Flag.objects.all()}
    assert pairs in ({(second, first)}, {(first, second)})
