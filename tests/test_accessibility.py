"""Every page, with an event's real content on it, checked by axe-core (WCAG 2.x A and AA) in a real
Chromium at a desktop and a phone width; and the attendee page used from the keyboard alone.

A serious or critical violation fails the page's test; minor and moderate ones are printed (-s).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client
from playwright.sync_api import Page, expect

from tests.a11y import assert_accessible
from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import Flag, Question

# transaction=True: the live server's thread must see the test's rows, and on_commit must fire.
pytestmark = pytest.mark.django_db(transaction=True)

CODE = "ALLHANDS"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
ORIGINAL = "Will the slides be shared after the talk?"
PARAPHRASE = "Are you going to share the slides afterwards?"
KEYNOTE = "Is the keynote recorded, and where will the video be posted?"
# A documentation address (RFC 5737): the failed sign-ins that lock a user name out come from it.
ADDRESS = "203.0.113.5"


@pytest.fixture(autouse=True)
def _fast_hashes(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class Room:
    event: Event
    users: dict[str | None, User | None]


@pytest.fixture
def room() -> Room:
    """An event in full swing: questions processed by the embedded functions (sentiment, flags), votes,
    an open duplicate flag, a merged question, one answered in writing, one on stage, a pinned, a
    hidden and an awaiting one."""
    owner = User.objects.create_user("olga", password="pw-for-tests-only")
    moderator = User.objects.create_user("mod", password="pw-for-tests-only")
    stranger = User.objects.create_user("sam", password="pw-for-tests-only")
    event = Event.create("Platform all-hands", code=CODE, created_by=owner)
    event.moderators.add(owner, moderator)
    Event.create("Design review", code="DESIGN", created_by=owner).moderators.add(owner)

    asked = {
        text: actions.submit_question(event, text, attendee=f"attendee-{i}", author_name=name)
        for i, (text, name) in enumerate(
            [
                (ORIGINAL, "Priya"),
                (PARAPHRASE, ""),
                (KEYNOTE, "Tom"),
                ("Will the keynote video be posted online?", ""),
                ("The wifi in the main hall keeps dropping, which is really frustrating.", "Ana"),
                ("When will the office in Lisbon open?", ""),
                ("Could you say more about the hiring plan?", "Lee"),
                ("Which metrics tell you that the redesign worked?", ""),
                ("Buy cheap watches at example dot com", ""),
            ]
        )
    }
    for i in range(4):
        actions.vote(asked[ORIGINAL], f"voter-{i}")
    actions.vote(asked[KEYNOTE], "voter-0")
    # The model flags these pairs; the page tests do not depend on it.
    video = asked["Will the keynote video be posted online?"]
    for new, earlier, kind in [(asked[PARAPHRASE], asked[ORIGINAL], "duplicate"), (video, asked[KEYNOTE], "related")]:
        Flag.objects.get_or_create(question=new, matched=earlier, defaults={"kind": kind, "similarity": 0.8})
    actions.merge(video, asked[KEYNOTE], moderator=moderator)
    actions.write_answer(asked["When will the office in Lisbon open?"], "In the spring, on the old harbour.", moderator)
    actions.moderate(asked["Which metrics tell you that the redesign worked?"], "now", moderator)
    actions.moderate(asked["Could you say more about the hiring plan?"], "pin", moderator)
    actions.moderate(asked["Buy cheap watches at example dot com"], "hide", moderator)
    Question.objects.create(
        event=event,
        text="Can the break be longer?",
        attendee="attendee-late",
        status=Question.Status.AWAITING_APPROVAL,
        state=Question.State.PROCESSED,
    )
    return Room(event, {None: None, "owner": owner, "moderator": moderator, "stranger": stranger})


# --- each page, and what makes it show its content ---------------------------------------------


def home(page: Page) -> None:
    page.goto(f"/e/{CODE}/")  # a joined event: the home page lists it
    page.goto("/")
    expect(page.locator("#recent-events > li")).to_have_count(1)


def models(page: Page) -> None:
    page.goto("/models/")
    page.get_by_label("Question A").fill(ORIGINAL)
    page.get_by_label("Question B").fill(PARAPHRASE)
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#result")).to_be_visible()


def login(page: Page) -> None:
    page.goto("/accounts/login/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def login_refused(page: Page) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".errorlist")).to_be_visible()


def locked_out(page: Page) -> None:
    client = Client(REMOTE_ADDR=ADDRESS)
    for _ in range(django_settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "sam", "password": "wrong"})
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill("pw-for-tests-only")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")


def my_events(page: Page) -> None:
    page.goto("/events/")
    expect(page.locator("tbody > tr")).to_have_count(2)


def attendee(page: Page) -> None:
    page.goto(f"/e/{CODE}/")
    page.locator("#ask-text").fill("Is there parking near the venue?")
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-status")).to_have_text("Sent. Thank you!")
    expect(page.locator("#questions > li", has_text="parking")).to_have_count(1)


def attendee_suggestions(page: Page) -> None:
    page.goto(f"/e/{CODE}/")
    page.locator("#ask-text").press_sequentially("Are the slides going to be shared?", delay=5)
    expect(page.locator("#suggestion-list > li", has_text=ORIGINAL)).to_be_visible()


def attendee_answered(page: Page) -> None:
    page.goto(f"/e/{CODE}/")
    expect(page.locator("#now-text")).to_have_text("Which metrics tell you that the redesign worked?")
    page.get_by_role("tab", name=re.compile("^Answered")).click()
    expect(page.locator("#answered-list > li")).to_have_count(1)
    expect(page.locator("#answered-list .answer-text")).to_have_text("In the spring, on the old harbour.")


def attendee_mine(page: Page) -> None:
    attendee(page)
    page.get_by_role("tab", name=re.compile("^Mine")).click()
    expect(page.locator("#mine > li")).to_have_count(1)


def attendee_editing(page: Page) -> None:
    attendee(page)
    page.locator("#questions > li", has_text="parking").get_by_role("button", name="Edit").click()
    expect(page.get_by_role("textbox", name="Edit your question")).to_be_focused()


def attendee_withdrawing(page: Page) -> None:
    attendee_mine(page)
    page.locator("#mine > li").get_by_role("button", name="Withdraw").click()
    expect(page.get_by_role("group", name="Withdraw your question")).to_be_visible()


def presenter(page: Page) -> None:
    page.goto(f"/e/{CODE}/present/")
    expect(page.locator("#present-list > li").first).to_be_visible()


def moderate(page: Page) -> None:
    page.goto(f"/e/{CODE}/moderate/")
    expect(page.locator("#flags > li").first).to_be_visible()
    expect(page.locator("#visible > li").first).to_be_visible()
    expect(page.locator("#awaiting > li")).to_have_count(1)


def moderate_answering(page: Page) -> None:
    moderate(page)
    page.locator("#visible > li").first.get_by_role("button", name=re.compile("answer$")).click()
    expect(page.get_by_role("textbox", name=re.compile("^Answer to:"))).to_be_focused()


def moderators(page: Page) -> None:
    page.goto(f"/e/{CODE}/moderators/")
    expect(page.locator("#moderators > li")).to_have_count(2)


def moderators_refused(page: Page) -> None:
    page.goto(f"/e/{CODE}/moderators/")
    page.get_by_role("textbox", name="User name").first.fill("nobody")
    page.get_by_role("button", name="Add moderator").click()
    expect(page.get_by_text("no user named 'nobody'")).to_be_visible()


def dashboard(page: Page) -> None:
    page.goto(f"/e/{CODE}/dashboard/")
    expect(page.locator("#updated")).not_to_have_text("loading…")
    expect(page.locator("#most-negative > li").first).to_be_visible()


def not_found(page: Page) -> None:
    assert page.goto("/e/NOSUCH/").status == 404


def forbidden(page: Page) -> None:
    assert page.goto(f"/e/{CODE}/moderate/").status == 403


# name: (who is signed in, how to get the page with its content on it)
PAGES: dict[str, tuple[str | None, Callable[[Page], None]]] = {
    "home": (None, home),
    "models": (None, models),
    "login": (None, login),
    "login-refused": (None, login_refused),
    "locked-out": (None, locked_out),
    "my-events": ("owner", my_events),
    "attendee": (None, attendee),
    "attendee-suggestions": (None, attendee_suggestions),
    "attendee-answered": (None, attendee_answered),
    "attendee-mine": (None, attendee_mine),
    "attendee-editing": (None, attendee_editing),
    "attendee-withdrawing": (None, attendee_withdrawing),
    "presenter": (None, presenter),
    "moderate": ("owner", moderate),
    "moderate-answering": ("owner", moderate_answering),
    "moderators": ("owner", moderators),
    "moderators-refused": ("owner", moderators_refused),
    "dashboard": ("moderator", dashboard),
    "404": (None, not_found),
    "403": ("stranger", forbidden),
}


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
@pytest.mark.parametrize("name", list(PAGES))
def test_page_has_no_serious_accessibility_violations(room: Room, new_page, name: str, viewport: dict[str, int]):
    who, visit = PAGES[name]
    page = new_page(room.users[who], viewport=viewport)
    visit(page)
    assert_accessible(page, f"{name} at {viewport['width']} px")


# --- the keyboard alone -------------------------------------------------------------------------


def tab_until(page: Page, is_there: str, presses: int = 40) -> None:
    """Press Tab until ``is_there`` (a function of the focused element) is true."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"(el => {is_there})(document.activeElement)"):
            return
    raise AssertionError(f"{presses} presses of Tab never reached {is_there}")


def test_an_attendee_asks_and_votes_with_the_keyboard_alone(room: Room, new_page):
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    tab_until(page, "el.id === 'ask-text'")
    page.keyboard.type("Is there parking near the venue?")
    tab_until(page, "el.id === 'ask-submit'")
    page.keyboard.press("Enter")
    expect(page.locator("#ask-status")).to_have_text("Sent. Thank you!")
    expect(page.locator("#ask-text")).to_have_value("")
    expect(page.locator("#questions > li", has_text="Is there parking near the venue?")).to_have_count(1)

    keynote = page.locator("#questions > li", has_text=KEYNOTE)
    expect(keynote.locator(".vote-count")).to_have_text("1")
    tab_until(page, f"el.matches('button.vote') && el.closest('li').textContent.includes({KEYNOTE!r})")
    page.keyboard.press("Space")
    expect(keynote.locator(".vote-count")).to_have_text("2")
    expect(keynote.locator("button.vote")).to_have_accessible_name(re.compile("upvoted", re.IGNORECASE))
    expect(keynote.locator("button.vote")).to_be_disabled()
    page.close()  # no poll may hold the test database's tables while the test reads them
    assert Question.objects.get(text=KEYNOTE).vote_count == 2


# --- the keyboard's focus can be seen -------------------------------------------------------------

FOCUS = """() => {
  const el = document.activeElement, style = getComputedStyle(el);
  let behind = el.parentElement;
  while (behind && getComputedStyle(behind).backgroundColor === "rgba(0, 0, 0, 0)") behind = behind.parentElement;
  return {style: style.outlineStyle, width: parseFloat(style.outlineWidth), color: style.outlineColor,
          background: behind ? getComputedStyle(behind).backgroundColor : "rgb(255, 255, 255)"};
}"""


def luminance(css_color: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", css_color)[:3]]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    light, dark = sorted([luminance(a), luminance(b)], reverse=True)
    return (light + 0.05) / (dark + 0.05)


def assert_focus_ring(page: Page) -> None:
    ring = page.evaluate(FOCUS)
    assert ring["style"] == "solid" and ring["width"] >= 2, ring
    # WCAG 1.4.11: what shows a component's state stands 3:1 from what is beside it.
    assert contrast(ring["color"], ring["background"]) >= 3, ring


@pytest.mark.parametrize(
    ("who", "path"),
    [
        pytest.param(None, "/", id="home"),
        pytest.param(None, "/accounts/login/", id="login"),
        pytest.param(None, f"/e/{CODE}/", id="attendee"),
        pytest.param("owner", f"/e/{CODE}/moderate/", id="moderate"),
        pytest.param("owner", f"/e/{CODE}/dashboard/", id="dashboard"),
    ],
)
def test_the_keyboard_focus_stands_out(room: Room, new_page, who: str | None, path: str):
    page = new_page(room.users[who])
    page.goto(path)
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement !== document.body")
    assert_focus_ring(page)
    if "/moderate/" in path:
        expect(page.locator("#flags > li").first).to_be_visible()
        page.keyboard.press("j")  # the moderators' keys move the focus through the flags
        expect(page.locator("#flags > li").first).to_be_focused()
        assert_focus_ring(page)
