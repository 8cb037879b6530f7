"""The attendee and moderator JSON API, on the embedded defaults (eager tasks, in-process functions)."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions.models import Flag, Question, Vote

# transaction=True: on_commit must fire, as it does in production (the task is queued after commit).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(event: Event) -> Client:
    """Here ``client`` is an attendee who opened the event page (the API refuses votes and posts
    from a client without the identity it gives)."""
    return attendee_client()


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
    second = ask(attendee_client(), "Are you going to share the slides afterwards?")
    flags = client.get(f"/api/questions/{second['id']}").json()["flags"]
    assert [(f["kind"], f["matched_id"]) for f in flags] == [("duplicate", first["id"])]
    assert flags[0]["similarity"] > 0.6
    third = ask(attendee_client(), "Where is the nearest parking garage?")
    assert client.get(f"/api/questions/{third['id']}").json()["flags"] == []


def test_votes_count_once_per_attendee(client: Client, event: Event):
    qid = ask(client, "Is remote work staying?")["id"]
    assert post(client, f"/api/questions/{qid}/vote", {})[1]["votes"] == 1
    assert post(client, f"/api/questions/{qid}/vote", {})[1] == {"id": qid, "votes": 1, "voted": True, "added": False}
    assert post(attendee_client(), f"/api/questions/{qid}/vote", {})[1]["votes"] == 2
    assert client.get("/api/events/ALLHANDS/questions").json()["questions"][0]["voted"] is True
    assert attendee_client().get("/api/events/ALLHANDS/questions").json()["questions"][0]["voted"] is False
    assert client.get(f"/api/questions/{qid}").json()["voted"] is True


def test_listing_sorts_by_votes_or_time(client: Client, event: Event):
    older = ask(client, "What is the hiring plan for next year?")["id"]
    newer = ask(client, "Can we get more standing desks?")["id"]
    post(attendee_client(), f"/api/questions/{older}/vote", {})
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
    assert client.get("/api/events/ALL%00HANDS/questions").status_code == 404  # PostgreSQL refuses NUL in a query
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
    assert attendee_client().get(f"/api/questions/{qid}").status_code == 404
    assert attendee_client().get("/api/events/ALLHANDS/questions").json()["questions"] == []
    mod = Client()
    mod.force_login(moderator)
    assert post(mod, f"/api/questions/{qid}/moderate", {"action": "approve"})[1]["status"] == "visible"
    assert [q["id"] for q in attendee_client().get("/api/events/ALLHANDS/questions").json()["questions"]] == [qid]


def test_merge_moves_votes_and_links_the_duplicate(client: Client, event: Event, moderator: User):
    original = ask(client, "Will the slides be shared after the talk?")["id"]
    asker = attendee_client()
    duplicate = ask(asker, "Are you going to share the slides afterwards?")["id"]
    voters = [attendee_client() for _ in range(3)]
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
    ask(attendee_client(), "Are you going to share the slides afterwards?")
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
    ask(attendee_client(), "Are the slides going to be shared?")
    flag = Flag.objects.first()
    intruder = Client()
    intruder.force_login(stranger)
    assert intruder.get("/api/events/ALLHANDS/flags").status_code == 403
    assert post(intruder, f"/api/flags/{flag.pk}/merge", {})[0] == 403
    assert post(intruder, f"/api/questions/{qid}/moderate", {"action": "hide"})[0] == 403
    assert attendee_client().get("/api/events/ALLHANDS/flags").status_code == 403
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


def cookieless() -> Client:
    """A client that has Django's CSRF cookie but never opened the event page."""
    client = Client()
    client.get("/models/")  # a page with a form: it sets the CSRF cookie
    assert "csrftoken" in client.cookies and "attendee" not in client.cookies
    return client


def test_a_vote_needs_the_identity_the_event_page_gives(client: Client, event: Event):
    qid = ask(client, "Is remote work staying?")["id"]
    post(attendee_client(), f"/api/questions/{qid}/vote", {})
    stuffer = cookieless()
    for _ in range(50):
        status, body = post(stuffer, f"/api/questions/{qid}/vote", {})
        assert status == 403 and "open the event page first" in body["error"]
    forged = Client()
    forged.cookies["attendee"] = "made-up-id.ALLHANDS"
    assert post(forged, f"/api/questions/{qid}/vote", {})[0] == 403
    signed_elsewhere = attendee_client()
    value = signed_elsewhere.cookies["attendee"].value
    signed_elsewhere.cookies["attendee"] = "x" + value  # another id under the same signature
    assert post(signed_elsewhere, f"/api/questions/{qid}/vote", {})[0] == 403
    assert Question.objects.get(pk=qid).vote_count == Vote.objects.filter(question_id=qid).count() == 1


def test_one_identity_adds_one_vote_per_question(client: Client, event: Event):
    qid = ask(client, "Is remote work staying?")["id"]
    voter = attendee_client()
    added = [post(voter, f"/api/questions/{qid}/vote", {})[1]["added"] for _ in range(20)]
    voter.get("/e/ALLHANDS/")  # opening the page again keeps the identity
    added.append(post(voter, f"/api/questions/{qid}/vote", {})[1]["added"])
    assert added == [True] + [False] * 20
    assert Question.objects.get(pk=qid).vote_count == 1


def test_posting_needs_an_identity(event: Event):
    status, body = post(cookieless(), "/api/events/ALLHANDS/questions", {"text": "Who am I?"})
    assert status == 403 and "open the event page first" in body["error"]
    assert Question.objects.count() == 0


def test_the_post_limit_is_not_walked_around_without_a_cookie(client: Client, event: Event, settings, still_clock):
    settings.POSTS_PER_MINUTE = 2
    statuses = [post(client, "/api/events/ALLHANDS/questions", {"text": f"Question {i}?"})[0] for i in range(3)]
    statuses += [post(cookieless(), "/api/events/ALLHANDS/questions", {"text": f"Again {i}?"})[0] for i in range(5)]
    assert statuses == [201, 201, 429] + [403] * 5
    assert Question.objects.count() == 2


def test_new_identities_are_rate_limited_per_address(event: Event, settings, still_clock):
    settings.ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS = 3
    joined = [attendee_client() for _ in range(3)]
    late = Client()
    response = late.get("/e/ALLHANDS/")
    assert response.status_code == 200 and "attendee" not in response.cookies
    assert "reload this page in a minute" in response.content.decode()
    assert post(late, "/api/events/ALLHANDS/questions", {"text": "Can I ask?"})[0] == 403
    # The identities already given keep working, and another address gets its own share.
    qid = ask(joined[0], "Is remote work staying?")["id"]
    assert post(joined[1], f"/api/questions/{qid}/vote", {})[1]["votes"] == 1
    assert joined[2].get("/e/ALLHANDS/").status_code == 200
    assert "attendee" in attendee_client(REMOTE_ADDR="10.0.0.2").cookies


def test_an_attendee_reads_only_the_events_they_joined(client: Client, event: Event):
    other = Event.create("Other event", code="OTHER")
    insider = attendee_client("OTHER")
    elsewhere = ask(insider, "Is the other office moving?", code="OTHER")["id"]
    here = ask(client, "Is remote work staying?")["id"]
    assert client.get(f"/api/questions/{elsewhere}").status_code == 404
    assert post(client, f"/api/questions/{elsewhere}/vote", {})[0] == 404
    assert cookieless().get(f"/api/questions/{here}").status_code == 404
    assert insider.get(f"/api/questions/{elsewhere}").status_code == 200
    # The join code in the path is enough to list an event's questions.
    assert [q["id"] for q in client.get("/api/events/OTHER/questions").json()["questions"]] == [elsewhere]
    client.get(f"/e/{other.code}/")  # joins it
    assert client.get(f"/api/questions/{elsewhere}").status_code == 200
    assert post(client, f"/api/questions/{elsewhere}/vote", {})[1]["votes"] == 1
    assert client.get(f"/api/questions/{here}").status_code == 200  # still joined to the first


def test_an_identity_remembers_a_bounded_list_of_events(client: Client, event: Event):
    from webapp.questions.attendees import MAX_EVENTS

    qid = ask(attendee_client(), "Is remote work staying?")["id"]
    assert client.get(f"/api/questions/{qid}").status_code == 200
    for i in range(MAX_EVENTS):
        Event.create(f"Event {i}", code=f"EV{i}")
        assert client.get(f"/e/EV{i}/").status_code == 200
    assert len(client.cookies["attendee"].value) < 1000
    assert client.get(f"/api/questions/{qid}").status_code == 404  # ALLHANDS was the oldest
    client.get("/e/ALLHANDS/")
    assert client.get(f"/api/questions/{qid}").status_code == 200


def test_flag_verdicts_are_for_moderators_only(client: Client, event: Event, moderator: User):
    first = ask(client, "Will the slides be shared after the talk?")["id"]
    second = ask(attendee_client(), "Are you going to share the slides afterwards?")["id"]
    mod = Client()
    mod.force_login(moderator)
    flag = mod.get("/api/events/ALLHANDS/flags").json()["flags"][0]
    assert post(mod, f"/api/flags/{flag['id']}/dismiss", {})[0] == 200
    seen = client.get(f"/api/questions/{second}").json()["flags"]
    assert [(f["kind"], f["matched_id"]) for f in seen] == [("duplicate", first)] and seen[0]["similarity"] > 0.6
    assert all("status" not in f for f in seen), seen
    assert "dismissed" not in client.get(f"/api/questions/{second}").content.decode()
    assert [f["status"] for f in mod.get(f"/api/questions/{second}").json()["flags"]] == ["dismissed"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"text": "bad \\ud800 surrogate"}', "text"),
        (b'{"text": "fine?", "name": "\\udfff"}', "name"),
        (b'{"text": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "body"),
        (b'{"text": ' + b"1" * 5_001 + b"}", "body"),
        (b'{"text": -' + b"9" * 101 + b"}", "body"),
        ('{"text": "\u200b\u200c\u200d\u2060\ufeff\u00ad\u202e\u2066"}'.encode(), "text"),
        ('{"text": "\u200b \u3164 \ufe0f"}'.encode(), "text"),
        ('{"text": "bad\u0085\u007f"}'.encode(), "text"),
    ],
)
def test_hostile_bodies_are_400_naming_the_field(client: Client, event: Event, body: bytes, field: str):
    response = client.post("/api/events/ALLHANDS/questions", body, content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == field, response.content
    assert Question.objects.count() == 0


def test_moderate_refuses_hostile_bodies_with_400(client: Client, event: Event, moderator: User):
    qid = ask(client, "What is the roadmap for Q3?")["id"]
    mod = Client()
    mod.force_login(moderator)
    for body in (b"[" * 50_000 + b"]" * 50_000, b'{"action": ' + b"7" * 5_001 + b"}", b'{"action": "\\ud800"}'):
        response = mod.post(f"/api/questions/{qid}/moderate", body, content_type="application/json")
        assert response.status_code == 400 and response.json()["field"] in ("body", "action"), response.content
    assert Question.objects.get(pk=qid).status == "visible"


def test_text_is_normalised_before_the_length_check(client: Client, event: Event):
    hidden = "\u200b\u00ad\u202e"
    body = ask(client, f"Is{hidden} the  ｆｕｌｌｗｉｄｔｈ\u00a0text {hidden * 40}cleaned?")
    assert body["text"] == "Is the fullwidth text cleaned?"
    padded = "x" * 299 + "?" + "\u200b" * 100  # 300 visible characters
    assert ask(client, padded)["text"] == "x" * 299 + "?"
    status, data = post(client, "/api/events/ALLHANDS/questions", {"text": "\ufdfa" * 20})  # NFKC: 18 each
    assert status == 400 and data["error"] == "text: at most 300 characters"


def test_similar_cleans_and_checks_the_query(client: Client, event: Event):
    asked = ask(client, "Will the slides be shared after the talk?")
    results = client.get("/api/events/ALLHANDS/similar", {"q": "are the\u200b slides going to be\u00ad shared"})
    assert results.json()["results"][0]["id"] == asked["id"]
    for query in ("q=%E2%80%8B%E2%80%8B%E2%80%8B", "q=%ED%A0%80%00", "q=%00", "q=" + "x" * 3_001):
        response = client.get(f"/api/events/ALLHANDS/similar?{query}")
        assert response.status_code == 400 and response.json()["field"] == "q", query
    # Invalid UTF-8 reaches the view as U+FFFD: a harmless query.
    assert client.get("/api/events/ALLHANDS/similar?q=%ED%A0%80%ED%A0%80").status_code == 200
