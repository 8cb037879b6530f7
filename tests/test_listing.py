"""The question list from a process's snapshot of the event's version: read once per version, with
only the asker's part (their questions, their votes) added per poll."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions import listing
from webapp.questions.models import Question

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/events/ALLHANDS/questions"


@pytest.fixture(autouse=True)
def _no_snapshots():
    listing.forget()
    yield
    listing.forget()


def ask(client: Client, text: str) -> int:
    response = client.post(URL, json.dumps({"text": text}), content_type="application/json")
    assert response.status_code == 201
    return response.json()["id"]


def poll(client: Client, **headers) -> tuple[dict, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(URL, **headers)
    assert response.status_code == 200
    return response.json(), len(captured)


def test_a_room_reads_the_list_once_per_version(event: Event):
    asker, voter, other = attendee_client(), attendee_client(), attendee_client()
    mine = ask(asker, "Will the slides be shared after the talk?")
    theirs = ask(other, "Is there a team offsite this year?")
    assert voter.post(f"/api/questions/{theirs}/vote").status_code == 200

    first, queries = poll(asker)
    assert queries == 4  # the event, its list, then the asker's questions and votes
    # The same version for the others: only their part is read.
    seen, queries = poll(voter)
    assert queries == 2
    presenter, queries = poll(Client())  # no attendee identity: nothing of its own
    assert queries == 0
    assert (
        [q["id"] for q in seen["questions"]]
        == [q["id"] for q in first["questions"]]
        == [q["id"] for q in presenter["questions"]]
    )

    rows = {q["id"]: q for q in first["questions"]}
    assert rows[mine]["mine"] is True and rows[mine]["editable_until"]
    assert rows[theirs]["mine"] is False and "editable_until" not in rows[theirs]
    rows = {q["id"]: q for q in seen["questions"]}
    assert rows[theirs]["voted"] is True and rows[mine]["voted"] is False and rows[mine]["mine"] is False
    assert "editable_until" not in rows[mine]
    assert all(not q["mine"] and not q["voted"] for q in presenter["questions"])


def test_a_change_is_a_new_snapshot(event: Event):
    asker, voter = attendee_client(), attendee_client()
    qid = ask(asker, "Will the slides be shared after the talk?")
    before, _ = poll(voter)
    assert before["questions"][0]["votes"] == 0
    assert voter.post(f"/api/questions/{qid}/vote").status_code == 200
    after, queries = poll(asker)
    assert after["questions"][0]["votes"] == 1 and queries == 4
    Question.objects.filter(pk=qid).update(text="Edited behind the app's back")  # no version bump
    again, _ = poll(attendee_client())
    assert again["questions"][0]["text"] == "Will the slides be shared after the talk?"  # the snapshot
    Event.objects.get(code="ALLHANDS").save()  # any change the pages show bumps the version
    assert poll(attendee_client())[0]["questions"][0]["text"] == "Edited behind the app's back"


def test_an_unknown_or_malformed_code_is_a_404_without_a_snapshot():
    for code in ("NOSUCH", "no spaces allowed", "x" * 40):
        response = Client().get(f"/api/events/{code}/questions")
        assert response.status_code == 404 and response.json()["error"] == "no event with that code"
    assert not listing._snapshots


def test_a_process_keeps_one_snapshot_per_event_and_sort(event: Event):
    asker = attendee_client()
    qid = ask(asker, "Will the slides be shared after the talk?")
    for _ in range(20):  # twenty votes, twenty versions
        assert attendee_client().post(f"/api/questions/{qid}/vote").status_code == 200
        poll(asker)
        assert asker.get(URL + "?sort=time").status_code == 200
    assert sorted(listing._snapshots) == [("ALLHANDS", "time"), ("ALLHANDS", "votes")]
    assert poll(asker)[0]["questions"][0]["votes"] == 20
