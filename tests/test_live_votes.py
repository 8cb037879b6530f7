"""Votes bump an event's live version at most once a window (webapp/questions/live.py): polls in
between share a version (304s, one read of the list), and no vote stays hidden."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions import live

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/events/ALLHANDS/questions"


CACHE_URL = "redis://127.0.0.1:6379/14"  # as tests/test_many_processes.py: not the Celery tests' 15


@pytest.fixture(params=["local", "redis"])
def clock(request, monkeypatch, settings):
    """live.py's clock, moved by hand; a window of 10 s; the process's own cache, or Redis (the
    shared cache of several processes: its counter is Redis's INCR)."""
    client = None
    if request.param == "redis":
        redis = pytest.importorskip("redis")
        client = redis.Redis.from_url(CACHE_URL, socket_connect_timeout=2)
        try:
            client.flushdb()
        except redis.exceptions.ConnectionError as exc:
            pytest.skip(f"Redis not reachable at {CACHE_URL}: {exc}")
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}}
    settings.LIVE_VOTE_WINDOW_S = 10
    now = [1_000_000.0]
    monkeypatch.setattr(live.time, "time", lambda: now[0])
    yield now
    if client is not None:
        assert client.dbsize() > 0  # the versions and counters were Redis's
        client.flushdb()


def ask(text: str) -> int:
    response = attendee_client().post(URL, json.dumps({"text": text}), content_type="application/json")
    assert response.status_code == 201
    return response.json()["id"]


def vote(qid: int) -> None:
    assert attendee_client().post(f"/api/questions/{qid}/vote").status_code == 200


def votes_seen(client: Client, etag: str | None) -> tuple[int | None, str]:
    """(the votes of the only question, or None for a 304; the ETag to send next)."""
    response = client.get(URL, **({"HTTP_IF_NONE_MATCH": etag} if etag else {}))
    if response.status_code == 304:
        return None, etag
    return response.json()["questions"][0]["votes"], response["ETag"]


def test_votes_in_a_window_share_one_version_and_all_show_after_it(event: Event, clock):
    qid = ask("Will the slides be shared after the talk?")
    reader = attendee_client()
    _, etag = votes_seen(reader, None)
    clock[0] += 20  # a quiet spell since the question's own bump
    vote(qid)  # the first vote after a quiet spell shows at once
    seen, etag = votes_seen(reader, etag)
    assert seen == 1
    for _ in range(5):  # five more inside the window: the version stays, polls are 304s
        clock[0] += 1
        vote(qid)
        assert votes_seen(reader, etag) == (None, etag)
    clock[0] += 6  # the window has passed: the next poll bumps for the uncounted votes
    assert votes_seen(reader, etag)[0] == 6
    assert live.version("ALLHANDS") == live.version("ALLHANDS")  # counted: no more bumps


def test_a_vote_during_a_pollers_bump_is_not_hidden(event: Event, clock):
    qid = ask("Will the slides be shared after the talk?")
    vote(qid)
    clock[0] += 1
    vote(qid)  # uncounted
    clock[0] += 20
    # A poller reads the counts (2 votes, 1 seen) ... then a third vote lands before its bump.
    real_get_many = live.cache.get_many

    def get_many_then_vote(keys):
        found = real_get_many(keys)
        live._vote("ALLHANDS")
        return found

    live.cache.get_many = get_many_then_vote
    try:
        first = live.version("ALLHANDS")
    finally:
        live.cache.get_many = real_get_many
    # The bump covered two votes: the third is still uncounted, and the next window shows it.
    clock[0] += 20
    second = live.version("ALLHANDS")
    assert second != first
    assert live.version("ALLHANDS") == second


def test_other_changes_show_at_once_inside_a_window(event: Event, clock):
    qid = ask("Will the slides be shared after the talk?")
    vote(qid)
    before = live.version("ALLHANDS")
    clock[0] += 1
    vote(qid)
    assert live.version("ALLHANDS") == before  # coalesced
    ask("Is there a team offsite this year?")  # a new question bumps at once
    assert live.version("ALLHANDS") != before


def test_a_lost_counter_never_hides_votes(event: Event, clock):
    qid = ask("Will the slides be shared after the talk?")
    vote(qid)
    clock[0] += 1
    vote(qid)
    live.cache.delete(live._key("ALLHANDS", "-votes"))  # evicted, or expired before the rest
    clock[0] += 20
    before = live.version("ALLHANDS")
    vote(qid)  # a counter that starts again at 1 differs from the 2 seen: counted as new
    assert live.version("ALLHANDS") != before
