"""A poll that finds no change is a 304 from the cache alone; any change a page shows refetches."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions import lifecycle
from webapp.questions.models import Flag, Question

pytestmark = pytest.mark.django_db(transaction=True)
LIST = "/api/events/ALLHANDS/questions"


def poll(client: Client, etag: str | None = None, sort: str = "votes"):
    headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
    return client.get(LIST, {"sort": sort}, **headers)


def post(client: Client, text: str) -> dict:
    response = client.post(LIST, json.dumps({"text": text}), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_an_unchanged_poll_is_a_304_without_a_query(event, django_assert_num_queries):
    attendee = attendee_client()
    post(attendee, "Will the slides be shared after the talk?")
    first = poll(attendee)
    assert first.status_code == 200 and first["ETag"] and "no-cache" in first["Cache-Control"]
    with django_assert_num_queries(0):
        again = poll(attendee, first["ETag"])
    assert again.status_code == 304 and again.content == b""
    # The ETag depends on who asks (their own questions and votes) and on the sort.
    assert poll(attendee_client(), first["ETag"]).status_code == 200
    assert poll(attendee, first["ETag"], sort="time").status_code == 200


def test_every_change_a_page_shows_makes_the_next_poll_refetch(event):
    moderator = User.objects.create_user("mod", password="pw-for-tests-only")
    event.moderators.add(moderator)
    staff = Client()
    staff.force_login(moderator)
    attendee, other = attendee_client(), attendee_client()
    first = post(attendee, "Will the slides be shared after the talk?")
    etag = poll(attendee)["ETag"]

    def refetched(what: str) -> None:
        nonlocal etag
        response = poll(attendee, etag)
        assert response.status_code == 200, what
        etag = response["ETag"]
        assert poll(attendee, etag).status_code == 304, what

    second = post(other, "Are you going to share the slides afterwards?")
    refetched("a question posted and processed")
    assert other.post(f"/api/questions/{first['id']}/vote").status_code == 200
    refetched("a vote")
    moderate = f"/api/questions/{first['id']}/moderate"
    assert staff.post(moderate, json.dumps({"action": "pin"}), content_type="application/json").status_code == 200
    refetched("a moderation")
    flag = Flag.objects.get(question_id=second["id"])
    assert staff.post(f"/api/flags/{flag.pk}/merge").status_code == 200
    refetched("a merge")
    lifecycle.failed(Question.objects.create(event=event, text="Lunch?", attendee="x").pk, "down")
    refetched("a failed processing")
    Event.objects.get(pk=event.pk).save()  # the admin closes or renames the event
    refetched("the event edited")


def test_a_cache_without_the_version_answers_in_full(event):
    from django.core.cache import cache

    attendee = attendee_client()
    etag = poll(attendee)["ETag"]
    cache.clear()
    assert poll(attendee, etag).status_code == 200


def test_errors_carry_no_etag(event):
    response = Client().get("/api/events/NOSUCH/questions")
    assert response.status_code == 404 and "ETag" not in response
    response = Client().get(LIST, {"sort": "bogus"})
    assert response.status_code == 400 and "ETag" not in response
