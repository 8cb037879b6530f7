"""The event pages on the server side: who sees what, the QR code, the CSV export, escaping."""

from __future__ import annotations

import csv
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
import qrcode
import qrcode.image.svg
from django.contrib.auth.models import User
from django.test import Client

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions.export import COLUMNS
from webapp.questions.models import Question

pytestmark = pytest.mark.django_db

PAGES = ["/e/ALLHANDS/", "/e/ALLHANDS/present/", "/e/ALLHANDS/moderate/", "/e/ALLHANDS/dashboard/"]
MODERATOR_ONLY = ["/e/ALLHANDS/moderate/", "/e/ALLHANDS/dashboard/", "/e/ALLHANDS/export.csv"]


@pytest.fixture
def moderator(event: Event) -> Client:
    user = User.objects.create_user("mod", password="pw-for-tests-only")
    event.moderators.add(user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stranger() -> Client:
    """A moderator, but of another event."""
    other = Event.create("Other event", code="OTHER")
    user = User.objects.create_user("stranger", password="pw-for-tests-only")
    other.moderators.add(user)
    client = Client()
    client.force_login(user)
    return client


def add_question(event: Event, text: str, **fields) -> Question:
    return Question.objects.create(event=event, text=text, attendee=fields.pop("attendee", "seed"), **fields)


def tag(response, name: str, element_id: str) -> str:
    """The opening tag of the element with this id, attributes included."""
    match = re.search(rf'<{name}\s+id="{element_id}"[^>]*>', response.content.decode())
    assert match, f"no <{name} id={element_id}>"
    return match.group(0)


def page_data(response) -> dict:
    body = response.content.decode()
    start = body.index('<script id="page-data" type="application/json">') + len(
        '<script id="page-data" type="application/json">'
    )
    return json.loads(body[start : body.index("</script>", start)])


def test_attendee_page_renders_in_any_letter_case(client: Client, event: Event):
    add_question(event, "What is the roadmap for Q3?", author_name="Ana", vote_count=4)
    response = client.get("/e/allhands/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Platform all-hands" in body and ">ALLHANDS<" in body
    assert "What is the roadmap for Q3?" in body and "Ana" in body
    assert 'maxlength="300"' in body and 'name="csrf-token"' in body
    assert 'id="ask-fields" disabled' not in body
    data = page_data(response)
    assert data["code"] == "ALLHANDS" and data["urls"]["questions"] == "/api/events/ALLHANDS/questions"
    assert data["urls"]["vote"] == "/api/questions/0/vote"
    # The attendee id comes with the page, so the first calls of the page share it.
    assert "attendee" in response.cookies and "csrftoken" in response.cookies
    assert data["identity"] is True and "hidden" in tag(response, "p", "busy-note")


@pytest.mark.parametrize("secure", [True, False])
def test_attendee_cookie_is_secure_when_cookies_should_be(client: Client, event: Event, settings, secure: bool):
    settings.SESSION_COOKIE_SECURE = secure
    cookie = client.get("/e/ALLHANDS/").cookies["attendee"]
    assert bool(cookie["secure"]) is secure
    assert cookie["httponly"] and cookie["samesite"] == "Lax"


def test_past_its_share_of_identities_an_address_gets_a_page_that_only_reads(
    client: Client, event: Event, settings, still_clock
):
    settings.ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS = 1
    add_question(event, "Visible one?")
    assert "attendee" in Client().get("/e/ALLHANDS/").cookies
    response = client.get("/e/ALLHANDS/")
    assert response.status_code == 200 and "attendee" not in response.cookies
    assert "Visible one?" in response.content.decode()
    assert page_data(response)["identity"] is False
    assert "disabled" in tag(response, "fieldset", "ask-fields")
    assert "hidden" not in tag(response, "p", "busy-note")
    assert re.search(r'data-action="vote"[^>]* disabled', response.content.decode())


def test_attendee_page_lists_only_public_questions(client: Client, event: Event):
    add_question(event, "Visible one?")
    add_question(event, "Waiting one?", status=Question.Status.AWAITING_APPROVAL)
    add_question(event, "Hidden one?", status=Question.Status.HIDDEN)
    body = client.get("/e/ALLHANDS/").content.decode()
    assert "Visible one?" in body and "Waiting one?" not in body and "Hidden one?" not in body


def test_closed_event_disables_the_form(client: Client, event: Event):
    assert "hidden" in tag(client.get("/e/ALLHANDS/"), "p", "closed-note")
    Event.objects.filter(pk=event.pk).update(is_open=False)
    response = client.get("/e/ALLHANDS/")
    assert "disabled" in tag(response, "fieldset", "ask-fields")
    assert "hidden" not in tag(response, "p", "closed-note")
    assert page_data(response)["open"] is False


def test_name_is_required_when_the_event_asks_for_it(client: Client, event: Event):
    response = client.get("/e/ALLHANDS/")
    assert "(optional)" in response.content.decode()
    assert not re.search(r"\brequired\b", tag(response, "input", "ask-name"))
    Event.objects.filter(pk=event.pk).update(anonymous_allowed=False)
    response = client.get("/e/ALLHANDS/")
    assert "(optional)" not in response.content.decode()
    assert re.search(r"\brequired\b", tag(response, "input", "ask-name"))
    assert page_data(response)["anonymous"] is False


@pytest.mark.parametrize("path", ["/e/NOPE/", "/e/NOPE/present/", "/e/NOPE/qr.svg", "/e/no_such!/"])
def test_unknown_code_is_a_404_page(client: Client, path: str):
    response = client.get(path)
    assert response.status_code == 404
    assert "Not found" in response.content.decode()


def test_unknown_code_is_404_for_moderators_too(moderator: Client):
    assert moderator.get("/e/NOPE/moderate/").status_code == 404
    assert moderator.get("/e/NOPE/dashboard/").status_code == 404
    assert moderator.get("/e/NOPE/export.csv").status_code == 404


@pytest.mark.parametrize("path", MODERATOR_ONLY)
def test_anonymous_is_sent_to_the_login_page(client: Client, event: Event, path: str):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_moderator_sees_every_page(moderator: Client, path: str):
    assert moderator.get(path).status_code == 200


def test_staff_moderate_every_event(client: Client, event: Event):
    client.force_login(User.objects.create_user("boss", password="pw-for-tests-only", is_staff=True))
    for path in PAGES:
        assert client.get(path).status_code == 200, path


@pytest.mark.parametrize("path", MODERATOR_ONLY)
def test_moderator_of_another_event_gets_403(stranger: Client, event: Event, path: str):
    response = stranger.get(path)
    assert response.status_code == 403
    assert "You do not moderate this event." in response.content.decode()


def test_dashboard_api_is_for_moderators_only(client: Client, stranger: Client, moderator: Client):
    assert client.get("/api/events/ALLHANDS/dashboard").status_code == 403
    response = stranger.get("/api/events/ALLHANDS/dashboard")
    assert response.status_code == 403 and "error" in response.json()
    assert moderator.get("/api/events/ALLHANDS/dashboard").status_code == 200
    assert moderator.get("/api/events/NOPE/dashboard").status_code == 404


def test_moderate_page_carries_the_api_addresses(moderator: Client):
    data = page_data(moderator.get("/e/ALLHANDS/moderate/"))
    assert data["urls"]["flags"] == "/api/events/ALLHANDS/flags"
    assert data["urls"]["merge"] == "/api/flags/0/merge"
    assert data["urls"]["moderate"] == "/api/questions/0/moderate"


def test_presenter_view_shows_now_answering_the_open_and_the_answered_questions(client: Client, event: Event):
    for i in range(8):
        add_question(event, f"Question number {i}?", vote_count=i)
    add_question(event, "Pinned with no votes?", pinned=True)
    add_question(event, "On stage with one vote?", now_answering=True, vote_count=1)
    add_question(event, "Answered with many votes?", answered=True, vote_count=50)
    add_question(event, "Hidden one?", status=Question.Status.HIDDEN, vote_count=90)
    response = client.get("/e/ALLHANDS/present/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "http://testserver/e/ALLHANDS/" in body and 'src="/e/ALLHANDS/qr.svg"' in body
    # The address as people type it, breakable only before the code.
    assert '<span class="nobreak">testserver/e/</span><wbr><span class="nobreak">ALLHANDS</span>' in body
    # The question on stage leads; a pinned one comes first among the rest.
    assert response.context["now"].text == "On stage with one vote?"
    assert [q.text for q in response.context["questions"]] == ["Pinned with no votes?"] + [
        f"Question number {i}?" for i in range(7, -1, -1)
    ]
    assert [q.text for q in response.context["answered"]] == ["Answered with many votes?"]
    assert "Hidden one?" not in body
    assert page_data(response)["max"] == 40


def test_qr_code_is_an_svg_of_the_absolute_attendee_url(client: Client, event: Event):
    response = client.get("/e/allhands/qr.svg")
    assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
    root = ET.fromstring(response.content)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}path") is not None
    expected = qrcode.make(
        "http://testserver/e/ALLHANDS/", image_factory=qrcode.image.svg.SvgPathImage, border=2
    ).to_string()
    assert response.content == expected


def test_export_is_a_csv_attachment_with_one_row_per_question(moderator: Client, event: Event):
    first = add_question(event, "=HYPERLINK('x') first?")
    add_question(event, "Second?", status=Question.Status.HIDDEN)
    add_question(event, "Third?", status=Question.Status.MERGED, merged_into=first)
    add_question(Event.create("Other", code="ELSEWHERE"), "Not this event?")
    response = moderator.get("/e/ALLHANDS/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="asktwice-allhands.csv"'
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == COLUMNS
    assert [r[2] for r in rows[1:]] == ["'=HYPERLINK('x') first?", "Second?", "Third?"]


def test_user_text_is_escaped_in_the_pages(client: Client, moderator: Client, event: Event):
    Event.objects.filter(pk=event.pk).update(title="<i>All</i> hands")
    add_question(event, '<script>alert("x")</script>', author_name="<b>Eve</b>")
    for path in ("/e/ALLHANDS/", "/e/ALLHANDS/present/"):
        body = client.get(path).content.decode()
        assert "<script>alert" not in body and "<b>Eve</b>" not in body and "<i>All</i>" not in body, path
        assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body and "&lt;b&gt;Eve&lt;/b&gt;" in body, path
    for path in ("/e/ALLHANDS/moderate/", "/e/ALLHANDS/dashboard/"):
        body = moderator.get(path).content.decode()
        assert "<i>All</i>" not in body and "&lt;i&gt;All&lt;/i&gt; hands" in body, path


def test_home_page_joins_an_event_by_code(client: Client, event: Event):
    response = client.get("/", {"code": " allhands "})
    assert response.status_code == 302 and response["Location"] == "/e/ALLHANDS/"
    response = client.get("/", {"code": "NOPE"})
    assert response.status_code == 200
    assert "No event has that join code" in response.content.decode()
    assert 'name="code"' in client.get("/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_dashboard_api_counts_processed_questions_and_verdicts(moderator: Client, event: Event):
    asker = attendee_client()
    for text in (
        "Will the slides be shared after the talk?",
        "Are you going to share the slides afterwards?",
        "Why is the coffee always cold and terrible?",
    ):
        response = asker.post("/api/events/ALLHANDS/questions", json.dumps({"text": text}), "application/json")
        assert response.status_code == 201
    flag = moderator.get("/api/events/ALLHANDS/flags").json()["flags"][0]
    assert moderator.post(f"/api/flags/{flag['id']}/merge").status_code == 200
    data = moderator.get("/api/events/ALLHANDS/dashboard").json()
    assert data["total"] == 3
    assert sum(data["sentiment"].values()) == 3 and data["sentiment"]["unscored"] == 0
    assert data["sentiment"]["negative"] >= 1
    assert sum(b["count"] for b in data["timeline"]) == 3
    assert data["duplicates"] | {"kinds": None} == {
        "raised": 1,
        "open": 0,
        "merged": 1,
        "dismissed": 0,
        "precision": 1.0,
        "kinds": None,
    }
    worst = data["most_negative"][0]
    assert worst["text"] == "Why is the coffee always cold and terrible?" and worst["negative"] > 0.5
    # The merged duplicate is represented by its original, not listed again.
    assert all(row["status"] != "merged" for row in data["most_negative"])


@pytest.mark.django_db
def test_moderator_switches_the_event_and_others_cannot():
    from django.contrib.auth.models import User
    from django.test import Client

    from webapp.events.models import Event

    event = Event.create("Switches", code="SWITCH")
    mod = User.objects.create_user("switcher", password="pw-for-tests-only")
    event.moderators.add(mod)
    client = Client()
    client.force_login(mod)
    response = client.post("/e/SWITCH/settings", {"premoderation": "on", "anonymous_allowed": "on"})
    assert response.status_code == 302 and response["Location"] == "/e/SWITCH/moderate/"
    event.refresh_from_db()
    assert (event.is_open, event.premoderation, event.anonymous_allowed) == (False, True, True)
    outsider = Client()
    outsider.force_login(User.objects.create_user("outsider", password="pw-for-tests-only"))
    assert outsider.post("/e/SWITCH/settings", {"is_open": "on"}).status_code == 403
    assert Client(enforce_csrf_checks=True).post("/e/SWITCH/settings", {"is_open": "on"}).status_code in (302, 403)
    event.refresh_from_db()
    assert event.is_open is False


@pytest.mark.django_db
def test_signed_in_moderator_can_sign_out():
    from django.contrib.auth.models import User
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_user("leaving", password="pw-for-tests-only"))
    assert "Sign out" in client.get("/").content.decode()
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "Sign out" not in client.get("/").content.decode()
