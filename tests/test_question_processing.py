"""Processing a question when the functions fail: nothing is lost, failures are visible and retried."""

from __future__ import annotations

import json
import socket

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from webapp.core import inference
from webapp.events.models import Event
from webapp.questions import index
from webapp.questions.models import Flag, Question

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh():
    cache.clear()
    inference.functions.cache_clear()
    yield
    inference.functions.cache_clear()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def functions_down(settings):
    settings.INFERENCE_BACKEND = "http"
    settings.INFERENCE_URL = f"http://127.0.0.1:{closed_port()}"
    settings.QUESTION_MAX_RETRIES = 2
    inference.functions.cache_clear()


def ask(client: Client, text: str) -> dict:
    client.get("/e/ROOM/")  # the event page gives the attendee their identity
    response = client.post("/api/events/ROOM/questions", json.dumps({"text": text}), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_question_is_accepted_while_the_functions_are_down_then_retried(client: Client, functions_down, settings):
    event = Event.create("Room", code="ROOM")
    moderator = User.objects.create_user("mod", password="pw-for-tests-only")
    event.moderators.add(moderator)
    body = ask(client, "Is the keynote recorded?")
    question = Question.objects.get(pk=body["id"])
    # Without a broker, one attempt per send: the sweeper sends a transient failure again later.
    assert question.state == "failed" and question.attempts == 1 and question.retryable
    assert "Connection" in question.last_error or "refused" in question.last_error
    mod = Client()
    mod.force_login(moderator)
    failed = mod.get("/api/events/ROOM/queue").json()["failed"]
    assert [q["id"] for q in failed] == [question.pk]
    # The attendee still sees the question.
    assert [q["id"] for q in client.get("/api/events/ROOM/questions").json()["questions"]] == [question.pk]

    settings.INFERENCE_BACKEND = "local"
    inference.functions.cache_clear()
    response = mod.post(
        f"/api/questions/{question.pk}/moderate", json.dumps({"action": "retry"}), content_type="application/json"
    )
    assert response.status_code == 200
    question.refresh_from_db()
    assert question.state == "processed" and question.sentiment_label and question.last_error == ""


def test_processing_twice_changes_nothing():
    from webapp.questions import processing

    event = Event.create("Room", code="ROOM")
    first = Question.objects.create(event=event, text="Will the slides be shared after the talk?", attendee="a")
    second = Question.objects.create(event=event, text="Are you going to share the slides afterwards?", attendee="b")
    for _ in range(2):
        processing.process_question(first.pk)
        processing.process_question(second.pk)
    assert Flag.objects.count() == 1
    assert Question.objects.get(pk=second.pk).attempts == 1
    processing.process_question(999_999)  # gone: returns quietly


def test_reindex_command_rebuilds_and_processes_pending(capsys):
    event = Event.create("Room", code="ROOM")
    Question.objects.create(event=event, text="Where is the coffee?", attendee="a")
    call_command("reindex", "--process", "--json")
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out == {"model": "minilm-l6", "events": 1, "vectors": 1, "reembedded": 0, "processed": 1, "failed": 0}
    index.forget()
    call_command("reindex", "--event", "room", "--json")
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["vectors"] == 1


def test_reindex_brings_vectors_of_another_model_into_the_current_space(capsys):
    from webapp.questions import processing
    from webapp.questions.similarity import find_matches

    event = Event.create("Room", code="ROOM")
    old = Question.objects.create(event=event, text="Will the slides be shared after the talk?", attendee="a")
    processing.process_question(old.pk)
    # Made by the model in force before a change of EMBEDDING_MODEL: not in this model's index.
    Question.objects.filter(pk=old.pk).update(vector_model="an-older-model")
    new = Question.objects.create(event=event, text="Are you going to share the slides afterwards?", attendee="b")
    vector = processing.process_question(new.pk).embedding()
    assert [m.question.pk for m in find_matches(event, vector, exclude_id=new.pk, limit=3)] == []
    call_command("reindex", "--json")
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["reembedded"] == 1 and out["vectors"] == 2
    assert Question.objects.get(pk=old.pk).vector_model == "minilm-l6"
    assert [m.question.pk for m in find_matches(event, vector, exclude_id=new.pk, limit=3)] == [old.pk]


def locked_once(monkeypatch, times: int = 1) -> list[int]:
    """processing.process_question raises "database is locked" ``times`` times, then runs."""
    from django.db import OperationalError

    from webapp.questions import processing

    real, calls = processing.process_question, []

    def flaky(question_id: int):
        calls.append(question_id)
        if len(calls) <= times:
            raise OperationalError("database is locked")
        return real(question_id)

    monkeypatch.setattr(processing, "process_question", flaky)
    return calls


def test_a_locked_database_is_retried_at_once_without_a_broker(monkeypatch):
    from webapp.questions import inprocess

    monkeypatch.setattr(inprocess, "LOCKED_RETRY_PAUSES_S", (0.01, 0.01, 0.01))
    event = Event.create("Room", code="ROOM")
    question = Question.objects.create(event=event, text="Is the keynote recorded?", attendee="a")
    calls = locked_once(monkeypatch, times=2)
    inprocess.process_once(question.pk)
    question.refresh_from_db()
    assert len(calls) == 3 and question.state == "processed"

    # Locked every time: failed for a transient reason, which the sweeper sends again.
    other = Question.objects.create(event=event, text="Where is the coffee?", attendee="b")
    calls = locked_once(monkeypatch, times=100)
    inprocess.process_once(other.pk)
    other.refresh_from_db()
    assert len(calls) == 4 and other.state == "failed" and other.retryable and "locked" in other.last_error


def test_a_locked_database_is_retried_by_the_celery_task(monkeypatch, settings):
    from webapp.questions.tasks import process_question

    settings.QUESTION_MAX_RETRIES = 2
    event = Event.create("Room", code="ROOM")
    question = Question.objects.create(event=event, text="Is the keynote recorded?", attendee="a")
    calls = locked_once(monkeypatch, times=1)
    process_question.apply((question.pk,))
    question.refresh_from_db()
    assert len(calls) == 2 and question.state == "processed"
