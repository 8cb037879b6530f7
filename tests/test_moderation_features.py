"""The moderators' tools: flags after a merge, bulk dismiss, search and filters, a long queue, and
owners adding moderators."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.events.models import Event
from webapp.questions.models import Flag, Question

pytestmark = pytest.mark.django_db

# A documentation address (RFC 5737): django-axes needs one to count sign-ins.
ADDRESS = "203.0.113.5"


@pytest.fixture(autouse=True)
def _fast_hashes(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def event(owner: User) -> Event:
    return Event.create("Platform all-hands", code="ALLHANDS", created_by=owner)


@pytest.fixture
def mod(moderator: User) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


def question(event: Event, text: str, **fields) -> Question:
    return Question.objects.create(event=event, text=text, attendee="someone", state="processed", **fields)


def flag(new: Question, earlier: Question, kind: str = "duplicate", similarity: float = 0.9, **fields) -> Flag:
    return Flag.objects.create(question=new, matched=earlier, kind=kind, similarity=similarity, **fields)


def post(client: Client, url: str, data) -> tuple[int, dict]:
    response = client.post(url, json.dumps(data), content_type="application/json")
    return response.status_code, response.json()


def listed(client: Client, query: str = "") -> list[tuple[int, int]]:
    response = client.get(f"/api/events/ALLHANDS/flags{query}")
    assert response.status_code == 200, response.content
    return [(f["question"]["id"], f["matched"]["id"]) for f in response.json()["flags"]]


# --- flags after a merge ------------------------------------------------------------------------


def test_merge_repoints_the_flags_on_the_merged_question_to_the_one_it_joined(event: Event, mod: Client):
    a, b, c = (question(event, t) for t in ("Slides shared?", "Will you share the slides?", "Slides online?"))
    b_a, c_b = flag(b, a), flag(c, b, kind="related", similarity=0.7)
    assert post(mod, f"/api/flags/{b_a.pk}/merge", {})[0] == 200
    c_b.refresh_from_db()
    assert (c_b.question_id, c_b.matched_id, c_b.status) == (c.pk, a.pk, "open")
    assert listed(mod) == [(c.pk, a.pk)]


def test_merge_closes_a_flag_that_would_repeat_another_or_point_at_itself(event: Event, mod: Client, moderator):
    a, b, c = (question(event, t) for t in ("Slides shared?", "Will you share the slides?", "Slides online?"))
    b_a, a_b, c_b, c_a = flag(b, a), flag(a, b, similarity=0.85), flag(c, b, similarity=0.8), flag(c, a, similarity=0.7)
    assert post(mod, f"/api/flags/{b_a.pk}/merge", {})[0] == 200
    for f in (a_b, c_b, c_a):
        f.refresh_from_db()
    # A -> B would be A -> A: the merge did what it suggested.
    assert (a_b.question_id, a_b.matched_id, a_b.status, a_b.decided_by) == (a.pk, b.pk, "merged", moderator)
    # C -> B would repeat C -> A: closed without a verdict; C -> A stays for the moderator.
    assert (c_b.matched_id, c_b.status, c_b.decided_by) == (b.pk, "dismissed", None)
    assert c_a.status == "open"
    assert listed(mod) == [(c.pk, a.pk)]
    assert Flag.objects.filter(matched=b, status="open").count() == 0


def test_merge_moves_the_merged_questions_own_flags_too(event: Event, mod: Client):
    a, b, y = (question(event, t) for t in ("Slides shared?", "Will you share the slides?", "Is there a recording?"))
    b_a, b_y = flag(b, a), flag(b, y, kind="related", similarity=0.6)
    assert post(mod, f"/api/flags/{b_a.pk}/merge", {})[0] == 200
    b_y.refresh_from_db()
    assert (b_y.question_id, b_y.matched_id, b_y.status) == (a.pk, y.pk, "open")


# --- bulk dismiss -------------------------------------------------------------------------------


def test_bulk_dismiss_closes_this_events_open_flags_only(event: Event, mod: Client, moderator: User):
    a = question(event, "Slides shared?")
    mine = [flag(question(event, f"Paraphrase {i}"), a) for i in range(3)]
    decided = flag(question(event, "Decided"), a, status="merged")
    other_event = Event.create("Other", code="OTHER")
    theirs = flag(question(other_event, "Theirs"), question(other_event, "Their original"))
    ids = [mine[0].pk, mine[1].pk, decided.pk, theirs.pk, 999_999, mine[0].pk]
    status, body = post(mod, "/api/events/ALLHANDS/flags/dismiss", {"ids": ids})
    assert status == 200
    assert body == {"dismissed": [mine[0].pk, mine[1].pk], "skipped": [decided.pk, theirs.pk, 999_999]}
    statuses = dict(Flag.objects.values_list("pk", "status"))
    assert [statuses[f.pk] for f in mine] == ["dismissed", "dismissed", "open"]
    assert statuses[decided.pk] == "merged" and statuses[theirs.pk] == "open"
    assert Flag.objects.get(pk=mine[0].pk).decided_by == moderator
    assert listed(mod) == [(mine[2].question_id, a.pk)]


def test_bulk_dismiss_makes_the_pages_refetch(event: Event, mod: Client, django_capture_on_commit_callbacks):
    a = question(event, "Slides shared?")
    f = flag(question(event, "Will you share the slides?"), a)
    first = mod.get("/api/events/ALLHANDS/flags")
    assert first.status_code == 200 and first["ETag"]
    assert mod.get("/api/events/ALLHANDS/flags", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    with django_capture_on_commit_callbacks(execute=True):
        assert post(mod, "/api/events/ALLHANDS/flags/dismiss", {"ids": [f.pk]})[0] == 200
    again = mod.get("/api/events/ALLHANDS/flags", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 200 and again.json()["flags"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"ids": []},
        {"ids": "1,2"},
        {"ids": [1.5]},
        {"ids": [True]},
        {"ids": ["1"]},
        {"ids": [0]},
        {"ids": [10**30]},
        {"ids": list(range(1, 502))},
    ],
)
def test_bulk_dismiss_refuses_bad_ids_with_400_naming_the_field(event: Event, mod: Client, body):
    status, answer = post(mod, "/api/events/ALLHANDS/flags/dismiss", body)
    assert status == 400 and answer["field"] == "ids", answer


def test_bulk_dismiss_is_for_this_events_moderators(event: Event):
    f = flag(question(event, "Will you share the slides?"), question(event, "Slides shared?"))
    other = Event.create("Other", code="OTHER")
    intruder = User.objects.create_user("intruder", password="pw-for-tests-only")
    other.moderators.add(intruder)
    client = Client()
    client.force_login(intruder)
    assert post(client, "/api/events/ALLHANDS/flags/dismiss", {"ids": [f.pk]})[0] == 403
    assert post(Client(), "/api/events/ALLHANDS/flags/dismiss", {"ids": [f.pk]})[0] == 403
    assert Flag.objects.get(pk=f.pk).status == "open"
    csrf = Client(enforce_csrf_checks=True)
    csrf.force_login(intruder)
    assert csrf.post("/api/events/OTHER/flags/dismiss", "{}", content_type="application/json").status_code == 403


# --- search and filters -------------------------------------------------------------------------


def test_flags_filter_by_words_kind_and_state(event: Event, mod: Client, moderator: User):
    slides, wifi, lunch = (question(event, t) for t in ("Will the slides be shared?", "The wifi is down", "Lunch?"))
    dup = flag(question(event, "Are the SLIDES online?"), slides, similarity=0.9)
    rel = flag(question(event, "Is the wifi password on the wall?"), wifi, kind="related", similarity=0.7)
    gone = flag(question(event, "When is lunch served?"), lunch, similarity=0.95)
    post(mod, f"/api/flags/{gone.pk}/dismiss", {})
    pairs = {f.pk: (f.question_id, f.matched_id) for f in (dup, rel, gone)}
    # Open by default, duplicates first.
    assert listed(mod) == [pairs[dup.pk], pairs[rel.pk]]
    assert listed(mod, "?kind=related") == [pairs[rel.pk]]
    assert listed(mod, "?kind=duplicate") == [pairs[dup.pk]]
    # Words in either question, in any letter case.
    assert listed(mod, "?q=slides") == [pairs[dup.pk]]
    assert listed(mod, "?q=PASSWORD") == [pairs[rel.pk]]
    assert listed(mod, "?q=wifi&kind=duplicate") == []
    decided = mod.get("/api/events/ALLHANDS/flags?status=dismissed").json()
    assert [(f["id"], f["status"], f["decided_by"]) for f in decided["flags"]] == [(gone.pk, "dismissed", "mod")]
    assert decided["total"] == 1


def test_flags_of_merged_questions_are_listed_as_merged(event: Event, mod: Client):
    a = question(event, "Will the slides be shared?")
    f = flag(question(event, "Are the slides online?"), a)
    post(mod, f"/api/flags/{f.pk}/merge", {})
    merged = mod.get("/api/events/ALLHANDS/flags?status=merged").json()["flags"]
    assert [(m["id"], m["status"], m["question"]["status"]) for m in merged] == [(f.pk, "merged", "merged")]


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=closed", "status"), ("kind=similar", "kind"), ("q=" + "x" * 2000, "q"), ("q=%00", "q")],
)
def test_bad_filters_are_400_naming_the_field(event: Event, mod: Client, query: str, field: str):
    response = mod.get(f"/api/events/ALLHANDS/flags?{query}")
    assert response.status_code == 400 and response.json()["field"] == field
    assert "ETag" not in response


# --- a long queue -------------------------------------------------------------------------------


def test_the_flag_list_reads_500_flags_in_a_few_queries(event: Event, mod: Client, django_assert_max_num_queries):
    originals = Question.objects.bulk_create(
        [Question(event=event, text=f"Original {i}", attendee="a", state="processed") for i in range(530)]
    )
    news = Question.objects.bulk_create(
        [Question(event=event, text=f"Paraphrase {i}", attendee="b", state="processed") for i in range(530)]
    )
    merged_into = originals[0]
    Question.objects.filter(pk__in=[q.pk for q in news[:20]]).update(status="merged", merged_into=merged_into)
    Flag.objects.bulk_create(
        [
            Flag(question=n, matched=o, kind="duplicate", similarity=0.8, status="merged" if i < 20 else "open")
            for i, (n, o) in enumerate(zip(news, originals, strict=True))
        ]
    )
    # The session, the user, the moderator check, the flags with their questions, the count.
    with django_assert_max_num_queries(6):
        body = mod.get("/api/events/ALLHANDS/flags").json()
    assert len(body["flags"]) == 500 and body["total"] == 510
    with django_assert_max_num_queries(6):
        merged = mod.get("/api/events/ALLHANDS/flags?status=merged").json()["flags"]
    assert len(merged) == 20 and merged[0]["question"]["merged_into"] == merged_into.pk


# --- the owner adds moderators ------------------------------------------------------------------


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_owner_adds_an_existing_user_who_then_moderates(event: Event, owner: User):
    maria = User.objects.create_user("maria", password="pw-for-tests-only")
    assert signed_in(maria).get("/api/events/ALLHANDS/flags").status_code == 403
    page = signed_in(owner).get("/e/allhands/moderators/")
    assert page.status_code == 200 and b"Add moderator" in page.content
    response = signed_in(owner).post("/e/ALLHANDS/moderators/", {"action": "add", "username": "maria"})
    assert response.status_code == 200
    assert b"<strong>maria</strong> moderates this event now." in response.content
    assert b"new-password" not in response.content
    assert signed_in(maria).get("/api/events/ALLHANDS/flags").status_code == 200
    assert list(event.moderators.values_list("username", flat=True)) == ["maria"]


def test_adding_an_unknown_or_present_user_is_an_error_on_the_field(event: Event, owner: User, moderator: User):
    client = signed_in(owner)
    unknown = client.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "nobody"})
    assert unknown.status_code == 400 and b"no user named &#x27;nobody&#x27;" in unknown.content
    assert b'aria-describedby="add-errors"' in unknown.content
    again = client.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "mod"})
    assert again.status_code == 400 and b"mod moderates this event already" in again.content
    taken = client.post("/e/ALLHANDS/moderators/", {"action": "create", "username": "mod"})
    assert taken.status_code == 400 and b"exists already" in taken.content
    assert b'aria-describedby="create-errors"' in taken.content
    bad = client.post("/e/ALLHANDS/moderators/", {"action": "create", "username": "no spaces please"})
    assert bad.status_code == 400 and not User.objects.filter(username="no spaces please").exists()
    assert client.post("/e/ALLHANDS/moderators/", {"action": "add", "username": ""}).status_code == 400


def test_the_owner_creates_a_moderator_whose_shown_password_signs_in(event: Event, owner: User):
    response = signed_in(owner).post("/e/ALLHANDS/moderators/", {"action": "create", "username": "newmod"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    password = re.search(rb'<code id="new-password">([^<]+)</code>', response.content).group(1).decode()
    user = User.objects.get(username="newmod")
    assert not user.is_staff and event.is_moderator(user)
    browser = Client(REMOTE_ADDR=ADDRESS)
    signed = browser.post("/accounts/login/", {"username": "newmod", "password": password})
    assert signed.status_code == 302 and signed["Location"] == "/events/"
    assert browser.get("/api/events/ALLHANDS/flags").status_code == 200
    # Shown once: the page does not show it again.
    assert password.encode() not in signed_in(owner).get("/e/ALLHANDS/moderators/").content


def test_only_the_owner_or_staff_add_moderators(event: Event, moderator: User):
    maria = User.objects.create_user("maria", password="pw-for-tests-only")
    as_moderator = signed_in(moderator)
    assert as_moderator.get("/e/ALLHANDS/moderators/").status_code == 403
    assert as_moderator.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "maria"}).status_code == 403
    other_owner = User.objects.create_user("otto", password="pw-for-tests-only")
    Event.create("Other", code="OTHER", created_by=other_owner)
    as_other_owner = signed_in(other_owner)
    assert as_other_owner.get("/e/OTHER/moderators/").status_code == 200
    assert as_other_owner.get("/e/ALLHANDS/moderators/").status_code == 403
    assert as_other_owner.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "maria"}).status_code == 403
    assert not event.moderators.filter(pk=maria.pk).exists()
    assert Client().get("/e/ALLHANDS/moderators/")["Location"] == "/accounts/login/?next=/e/ALLHANDS/moderators/"
    staff = signed_in(User.objects.create_user("boss", password="pw-for-tests-only", is_staff=True))
    assert staff.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "maria"}).status_code == 200
    assert signed_in(moderator).get("/e/NOSUCH/moderators/").status_code == 404


def test_the_moderators_form_needs_its_csrf_token(event: Event, owner: User):
    User.objects.create_user("maria", password="pw-for-tests-only")
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "maria"}).status_code == 403
    page = client.get("/e/ALLHANDS/moderators/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()
    added = client.post("/e/ALLHANDS/moderators/", {"action": "add", "username": "maria", "csrfmiddlewaretoken": token})
    assert added.status_code == 200 and event.moderators.filter(username="maria").exists()


def test_the_owner_finds_the_moderators_page_from_their_pages(event: Event, owner: User, moderator: User):
    event.moderators.add(owner)
    for path in ("/events/", "/e/ALLHANDS/moderate/"):
        assert b'href="/e/ALLHANDS/moderators/"' in signed_in(owner).get(path).content
        assert b'href="/e/ALLHANDS/moderators/"' not in signed_in(moderator).get(path).content
