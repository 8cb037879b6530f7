"""The attendee and moderator JSON API, on the embedded defaults (eager tasks, in-process functions)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.events.models import Event
from webapp.questions.models import Flag, Question

# transaction=True: on_commit must fire, as it does in production (the task is queued after commit).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def moderator(event: Event) -> User:
    user = User.objects.create_user("mod", password="pw-for-tests-only")
    event.moderators.add(user)
    return user


def post(client: Client, url: str, data) -> tuple[int, dict]:
    response = client.post(url, json.dumps(data), content_type="application/json")
    return response.status_code, response.json()


def ask(client: Client, text: str, code: str = "ALLHANDS", **extra) -> dict:
    status, body = post(client, f"/api/events/{code}/questions", {"text": text, **extra})
    assert status == 201, body
    return body


def test_a_question_is_stored_processed_and_scored(client: Client, event: Event):
    body = ask(client, "When will the new office open?", name="Ana")
    assert body["state"] == "processed" and body["status"] == "visible" and body["mine"] is True
    detail = client.get(f"/api/questions/{body['id']}").json()
    assert detail["text"] == "When will the new office open?" and detail["name"] == "Ana"
    assert detail["sentiment"]["label"] in ("negative", "neutral", "positive")
    assert detail["flags"] == []
    assert Question.objects.get(pk=body["id"]).embedding().shape == (384,)


def test_a_paraphrase_is_flagged_against_the_earlier_question(client: Client, event: Event):
    first = ask(client, "Will the slides be shared after the talk?")
    second = ask(Client(), "Are you going to share the slides afterwards?")
    flags = client.get(f"/api/questions/{second['id']}").json()["flags"]
    assert [(f["kind"], f["matched_id"]) for f in flags] == [("duplicate", first["id"])]
    assert flags[0]["similarity"] > 0.6
    third = ask(Client(), "Where is the nearest parking garage?")
    assert client.get(f"/api/questions/{third['id']}").json()["flags"] == []


def test_votes_count_once_per_attendee(client: Client, event: Event):
    qid = ask(client, "Is remote work staying?")["id"]
    assert post(client, f"/api/questions/{qid}/vote", {})[1]["votes"] == 1
    assert post(client, f"/api/questions/{qid}/vote", {})[1] == {"id": qid, "votes": 1, "voted": True, "added": False}
    assert post(Client(), f"/api/questions/{qid}/vote", {})[1]["votes"] == 2
    assert client.get("/api/events/ALLHANDS/questions").json()["questions"][0]["voted"] is True
    assert Client().get("/api/events/ALLHANDS/questions").json()["questions"][0]["voted"] is False
    assert client.get(f"/api/questions/{qid}").json()["voted"] is True


def test_listing_sorts_by_votes_or_time(client: Client, event: Event):
    older = ask(client, "What is the hiring plan for next year?")["id"]
    newer = ask(client, "Can we get more standing desks?")["id"]
    post(Client(), f"/api/questions/{older}/vote", {})
    by_votes = [q["id"] for q in client.get("/api/events/ALLHANDS/questions").json()["questions"]]
    by_time = [q["id"] for q in client.get("/api/events/ALLHANDS/questions?sort=time").json()["questions"]]
    assert by_votes == [older, newer] and by_time == [newer, older]


def test_similar_suggests_the_already_asked_question(client: Client, event: Event):
    asked = ask(client, "Will the slides be shared after the talk?")
    results = client.get("/api/events/ALLHANDS/similar", {"q": "are the slides going to be shared"}).json()["results"]
    assert results and results[0]["id"] == asked["id"] and results[0]["kind"] in ("duplicate", "related")
    assert client.get("/api/events/ALLHANDS/similar", {"q": "parking for bicycles"}).json()["results"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 301}, "text"),
        ({"text": 42}, "text"),
        ({"text": "ok?", "name": "n" * 61}, "name"),
        ({"text": "bad\x00char"}, "text"),
        ([1, 2], "body"),
    ],
)
def test_bad_questions_are_400_naming_the_field(client: Client, event: Event, body, field: str):
    status, data = post(client, "/api/events/ALLHANDS/questions", body)
    assert status == 400 and data["field"] == field
    assert Question.objects.count() == 0


def test_malformed_json_and_unknown_event(client: Client, event: Event):
    response = client.post("/api/events/ALLHANDS/questions", b"{nope", content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "body"
    assert client.get("/api/events/NOPE/questions").status_code == 404
    assert client.get("/api/questions/999999").status_code == 404
    assert client.get("/api/events/ALLHANDS/questions?sort=random").status_code == 400


def test_too_many_posts_from_one_attendee_is_429(client: Client, event: Event, settings, still_clock):
    settings.POSTS_PER_MINUTE = 3
    statuses = [post(client, "/api/events/ALLHANDS/questions", {"text": f"Question number {i}?"})[0] for i in range(4)]
    assert statuses == [201, 201, 201, 429]
    assert Question.objects.count() == 3


def test_closed_event_takes_no_questions(client: Client, event: Event):
    Event.objects.filter(pk=event.pk).update(is_open=False)
    status, data = post(client, "/api/events/ALLHANDS/questions", {"text": "Still open?"})
    assert status == 409 and "closed" in data["error"]


def test_premoderated_question_waits_and_only_its_asker_sees_it(client: Client, event: Event, moderator: User):
    Event.objects.filter(pk=event.pk).update(premoderation=True)
    qid = ask(client, "Why were bonuses cut?")["id"]
    assert client.get("/api/events/ALLHANDS/questions").json()["mine"][0]["status"] == "awaiting_approval"
    assert Client().get(f"/api/questions/{qid}").status_code == 404
    assert Client().get("/api/events/ALLHANDS/questions").json()["questions"] == []
    mod = Client()
    mod.force_login(moderator)
    assert post(mod, f"/api/questions/{qid}/moderate", {"action": "approve"})[1]["status"] == "visible"
    assert [q["id"] for q in Client().get("/api/events/ALLHANDS/questions").json()["questions"]] == [qid]


def test_merge_moves_votes_and_links_the_duplicate(client: Client, event: Event, moderator: User):
    original = ask(client, "Will the slides be shared after the talk?")["id"]
    asker = Client()
    duplicate = ask(asker, "Are you going to share the slides afterwards?")["id"]
    voters = [Client() for _ in range(3)]
    post(voters[0], f"/api/questions/{original}/vote", {})
    post(voters[1], f"/api/questions/{duplicate}/vote", {})
    post(voters[2], f"/api/questions/{duplicate}/vote", {})
    post(voters[0], f"/api/questions/{duplicate}/vote", {})  # voted on both: counts once
    mod = Client()
    mod.force_login(moderator)
    flags = mod.get("/api/events/ALLHANDS/flags").json()["flags"]
    assert [(f["question"]["id"], f["matched"]["id"]) for f in flags] == [(duplicate, original)]
    status, merged = post(mod, f"/api/flags/{flags[0]['id']}/merge", {})
    assert status == 200 and merged["status"] == "merged"
    listing = client.get("/api/events/ALLHANDS/questions").json()["questions"]
    assert [(q["id"], q["votes"]) for q in listing] == [(original, 3)]
    mine = asker.get(f"/api/questions/{duplicate}").json()
    assert mine["status"] == "merged" and mine["merged_into"] == original
    assert mod.get("/api/events/ALLHANDS/flags").json()["flags"] == []
    assert post(mod, f"/api/flags/{flags[0]['id']}/merge", {})[0] == 409


def test_dismiss_keeps_both_questions(client: Client, event: Event, moderator: User):
    ask(client, "Will the slides be shared after the talk?")
    ask(Client(), "Are you going to share the slides afterwards?")
    mod = Client()
    mod.force_login(moderator)
    flag = mod.get("/api/events/ALLHANDS/flags").json()["flags"][0]
    assert post(mod, f"/api/flags/{flag['id']}/dismiss", {})[1]["status"] == "dismissed"
    assert len(client.get("/api/events/ALLHANDS/questions").json()["questions"]) == 2
    assert Flag.objects.get(pk=flag["id"]).decided_by == moderator


def test_moderator_of_another_event_gets_403(client: Client, event: Event):
    other = Event.create("Other event", code="OTHER")
    stranger = User.objects.create_user("stranger", password="pw-for-tests-only")
    other.moderators.add(stranger)
    qid = ask(client, "Will the slides be shared?")["id"]
    ask(Client(), "Are the slides going to be shared?")
    flag = Flag.objects.first()
    intruder = Client()
    intruder.force_login(stranger)
    assert intruder.get("/api/events/ALLHANDS/flags").status_code == 403
    assert post(intruder, f"/api/flags/{flag.pk}/merge", {})[0] == 403
    assert post(intruder, f"/api/questions/{qid}/moderate", {"action": "hide"})[0] == 403
    assert Client().get("/api/events/ALLHANDS/flags").status_code == 403
    assert Question.objects.get(pk=qid).status == "visible"


def test_moderation_actions_and_bad_action(client: Client, event: Event, moderator: User):
    qid = ask(client, "What is the roadmap for Q3?")["id"]
    mod = Client()
    mod.force_login(moderator)
    assert post(mod, f"/api/questions/{qid}/moderate", {"action": "pin"})[1]["pinned"] is True
    assert post(mod, f"/api/questions/{qid}/moderate", {"action": "answer"})[1]["answered"] is True
    status, data = post(mod, f"/api/questions/{qid}/moderate", {"action": "explode"})
    assert status == 400 and data["field"] == "action"
    assert post(mod, f"/api/questions/{qid}/moderate", {"action": "hide"})[1]["status"] == "hidden"
    assert client.get("/api/events/ALLHANDS/questions").json()["questions"] == []
