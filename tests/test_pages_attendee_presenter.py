"""What a person sees on the home, models, attendee and presenter pages, in a real Chromium at a
desktop, a phone and projector sizes."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import Question

# transaction=True: the live server's thread must see the test's rows, and on_commit must fire.
pytestmark = pytest.mark.django_db(transaction=True)

CODE = "ALLHANDS"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
HD = {"width": 1920, "height": 1080}
UHD = {"width": 3840, "height": 2160}
ORIGINAL = "Will the slides be shared after the talk?"
PARAPHRASE = "Are you going to share the slides afterwards?"
# Questions of the length people ask at a talk.
OPEN_QUESTIONS = [
    "How does the new pricing affect customers on the legacy annual plan?",
    "What is the roadmap for the mobile app next quarter?",
    "Is the keynote recorded, and where will the video be posted?",
    "Can we get access to the beta before the public launch?",
    "How many people are joining the platform team this year?",
    "What was the hardest part of the database migration?",
    "Will the API stay backwards compatible after version three?",
    "Are there plans to support single sign-on for small teams?",
    "How do you decide which features go into the free tier?",
    "When will the office in Lisbon open?",
    "What is the on-call rotation going to look like?",
    "Which metrics tell you that the redesign worked?",
]


@pytest.fixture
def event() -> Event:
    return Event.create("Platform all-hands", code=CODE)


def horizontal_overflow(page: Page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")


# --- the home page and the models page ------------------------------------------------------------


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_home_page_leads_with_joining_and_remembers_the_events_joined(event: Event, new_page, viewport):
    Event.create("Design review", code="DESIGN")
    page = new_page(viewport=viewport)
    page.goto("/")
    assert horizontal_overflow(page) <= 0
    first_form = page.locator("form").first
    expect(first_form.get_by_label("Event code")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Join an event")
    expect(page.locator("#recent-events")).to_have_count(0)  # nothing joined yet

    page.get_by_label("Event code").fill("nope")
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_have_text("No event has that join code: check it and try again.")

    page.get_by_label("Event code").fill("design")
    page.get_by_role("button", name="Join").click()
    expect(page).to_have_url(re.compile(r"/e/DESIGN/$"))
    page.goto(f"/e/{CODE}/")
    page.goto("/")
    recent = page.locator("#recent-events > li")
    expect(recent).to_have_count(2)
    expect(recent.first).to_contain_text("Platform all-hands")  # newest first
    expect(recent.nth(1)).to_contain_text("Design review")
    recent.nth(1).get_by_role("link").click()
    expect(page.locator("#event-title")).to_have_text("Design review")
    assert horizontal_overflow(page) <= 0


def test_models_page_compares_two_questions_and_fits_a_phone(new_page):
    page = new_page(viewport=PHONE)
    page.goto("/")
    page.get_by_role("link", name="compare two questions and see the models").click()
    expect(page).to_have_url(re.compile(r"/models/$"))
    expect(page.locator("table")).to_contain_text("minilm-l6")
    assert horizontal_overflow(page) <= 0  # the wide table scrolls inside its own box
    page.get_by_label("Question A").fill(ORIGINAL)
    page.get_by_label("Question B").fill(PARAPHRASE)
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#result .verdict strong")).to_have_text("duplicate")
    expect(page.locator("#result .moods li")).to_have_count(2)


# --- the attendee page ----------------------------------------------------------------------------


def ask(page: Page, text: str) -> None:
    page.locator("#ask-text").fill(text)
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-status")).to_have_text("Sent. Thank you!")


def test_a_merged_question_names_the_words_of_the_one_it_joined(event: Event, new_page):
    original = actions.submit_question(event, ORIGINAL, attendee="someone-else")
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, PARAPHRASE)
    mine = Question.objects.get(text=PARAPHRASE)
    actions.merge(mine, original, moderator=None)

    page.get_by_role("tab", name=re.compile("^Mine")).click()
    merged = page.locator("#mine > li", has_text=PARAPHRASE)
    expect(merged).to_contain_text(f"Merged into “{ORIGINAL}”: its votes count there")
    expect(merged).not_to_contain_text("#")
    merged.get_by_role("link", name=f"“{ORIGINAL}”").click()
    # The link leads to the original in the "Open" list.
    expect(page.get_by_role("tab", name="Open")).to_have_attribute("aria-selected", "true")
    expect(page.locator(f"#q-{original.pk}")).to_be_in_viewport()


def test_the_rate_limit_says_when_one_can_ask_again(event: Event, new_page, settings, still_clock):
    settings.POSTS_PER_MINUTE = 1
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, "What is the roadmap for the mobile app?")
    page.locator("#ask-text").fill("And the roadmap for the web app?")
    page.get_by_role("button", name="Send question").click()
    # The limiter's clock stands half-way through its minute.
    expect(page.locator("#ask-status")).to_have_text(
        "You have asked several questions in a row: you can ask again in 30 seconds."
    )
    expect(page.locator("#ask-text")).to_have_value("And the roadmap for the web app?")


def test_sent_thank_you_goes_when_the_next_question_is_typed(event: Event, new_page):
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, "Is the keynote recorded?")
    page.locator("#ask-text").press_sequentially("And the", delay=5)
    expect(page.locator("#ask-status")).to_have_text("")


def test_answered_and_mine_are_tabs_that_work_from_the_keyboard(event: Event, new_page):
    actions.submit_question(event, "Someone else's question about parking?", attendee="someone-else")
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, "Is the keynote recorded?")
    ask(page, "Where is the coffee?")
    answered = Question.objects.get(text="Where is the coffee?")
    actions.write_answer(answered, "On the second floor,\nnext to the lifts.", moderator=None)

    # "Open" comes first, without the answered question and without repeating one's own above it.
    open_list = page.locator("#questions > li")
    expect(open_list).to_have_count(2)
    expect(page.locator("#questions")).not_to_contain_text("Where is the coffee?")
    expect(page.locator("#mine")).to_be_hidden()
    expect(page.get_by_role("tab", name=re.compile("^Answered"))).to_have_text(re.compile(r"Answered\s+\(1\)"))
    expect(page.get_by_role("tab", name=re.compile("^Mine"))).to_have_text(re.compile(r"Mine\s+\(2\)"))

    page.get_by_role("tab", name="Open").focus()
    page.keyboard.press("ArrowRight")
    answered_tab = page.get_by_role("tab", name=re.compile("^Answered"))
    expect(answered_tab).to_be_focused()
    expect(answered_tab).to_have_attribute("aria-selected", "true")
    expect(page.locator("#questions")).to_be_hidden()
    done = page.locator("#answered-list > li")
    expect(done).to_have_count(1)
    expect(done.locator(".answer-text")).to_have_text("On the second floor,\nnext to the lifts.")
    # The answer keeps its line break on screen.
    assert (
        done.locator(".answer-text").evaluate("n => n.getClientRects().length && n.innerText.split('\\n').length") == 2
    )

    page.keyboard.press("End")
    mine_tab = page.get_by_role("tab", name=re.compile("^Mine"))
    expect(mine_tab).to_be_focused()
    mine = page.locator("#mine > li")
    expect(mine).to_have_count(2)
    expect(page.locator("#mine > li", has_text="Where is the coffee?")).to_contain_text("✓ Answered")
    expect(page.locator("#mine > li", has_text="Is the keynote recorded?")).to_contain_text("Live · 0 votes")
    expect(page.get_by_role("group", name="Sort questions")).to_be_hidden()

    page.keyboard.press("Home")
    expect(page.get_by_role("tab", name="Open")).to_be_focused()
    expect(open_list.first).to_be_visible()
    assert horizontal_overflow(page) <= 0


# --- the presenter page ---------------------------------------------------------------------------


def seed_room(event: Event) -> tuple[Question, Question]:
    """Twelve open questions with votes, one on stage, one answered: (on stage, answered)."""
    for votes, text in enumerate(reversed(OPEN_QUESTIONS)):
        Question.objects.create(
            event=event, text=text, attendee="seed", vote_count=votes + 2, state=Question.State.PROCESSED
        )
    pinned = Question.objects.create(
        event=event, text="Could you say more about the hiring plan?", attendee="seed", now_answering=True, vote_count=1
    )
    answered = Question.objects.create(
        event=event, text="Is there a recording of last year's talk?", attendee="seed", answered=True, vote_count=40
    )
    return pinned, answered


def visible_boxes(page: Page, selector: str) -> list[dict[str, float]]:
    """The boxes of the matching elements that are rendered (not hidden), in page coordinates."""
    return page.locator(selector).evaluate_all(
        """nodes => nodes.filter(n => n.getClientRects().length > 0).map(n => {
            const r = n.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, left: r.left, right: r.right};
        })"""
    )


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"] - 0.5
        and b["left"] < a["right"] - 0.5
        and (a["top"] < b["bottom"] - 0.5 and b["top"] < a["bottom"] - 0.5)
    )


@pytest.mark.parametrize("viewport", [HD, UHD], ids=["1080p", "4k"])
def test_presenter_fills_the_projector_and_keeps_the_answered_ones(event: Event, new_page, viewport):
    pinned, answered = seed_room(event)
    page = new_page(viewport=viewport)
    page.goto(f"/e/{CODE}/present/")

    expect(page.locator("#now")).to_be_visible()
    expect(page.locator("#now-label")).to_have_text("Now answering")
    expect(page.locator("#now-text")).to_have_text(pinned.text)
    done = page.locator("#answered-list > li", has_text=answered.text)
    expect(done).to_be_visible()
    expect(done.locator(".pq-answered")).to_have_text("Answered")
    expect(page.locator("#present-list > li", has_text=answered.text)).to_have_count(0)

    # No scrolling; the questions shown are whole, do not overlap and are inside the screen.
    assert page.evaluate("() => document.documentElement.scrollHeight") <= viewport["height"]
    assert horizontal_overflow(page) <= 0
    items = visible_boxes(page, "#now, #present-list > li, #answered-list > li")
    open_shown = visible_boxes(page, "#present-list > li")
    assert len(open_shown) >= 8, len(open_shown)
    assert all(box["bottom"] <= viewport["height"] and box["top"] >= 0 for box in items)
    assert not any(overlap(a, b) for i, a in enumerate(items) for b in items[i + 1 :])
    # The ones that did not fit are counted, not cut in half.
    hidden = len(OPEN_QUESTIONS) - len(open_shown)
    more = page.locator("#present-more")
    if hidden:
        expect(more).to_have_text(f"+ {hidden} more question{'s' if hidden > 1 else ''}")
    else:
        expect(more).to_be_hidden()

    # Type scales with the screen: the question text is at least 1.4 % of the screen's width.
    size = page.locator("#present-list > li .pq-text").first.evaluate("n => parseFloat(getComputedStyle(n).fontSize)")
    assert size >= viewport["width"] * 0.014, size

    # The code is one line, and the address breaks (if at all) only before the code.
    code = page.locator("#join-code")
    expect(code).to_have_text(CODE)
    height, line = code.evaluate("n => [n.getBoundingClientRect().height, parseFloat(getComputedStyle(n).lineHeight)]")
    assert abs(height - line) < 1, (height, line)
    assert page.locator("#join-url .nobreak").evaluate_all("spans => spans.map(s => s.getClientRects().length)") == [
        1,
        1,
    ]
    qr = page.locator("img.qr").bounding_box()
    assert qr is not None and qr["width"] >= viewport["width"] * 0.15, qr  # readable from the back


def test_presenter_follows_the_stage_and_the_answers_live(event: Event, new_page):
    on_stage, answered = seed_room(event)
    page = new_page(viewport=HD)
    page.goto(f"/e/{CODE}/present/")
    expect(page.locator("#now-text")).to_have_text(on_stage.text)

    # The moderator marks the question on stage answered: it moves to the answered ones, ticked.
    actions.moderate(on_stage, "answer")
    expect(page.locator("#now")).to_be_hidden()
    expect(page.locator("#answered-list > li", has_text=on_stage.text).locator(".pq-answered")).to_have_text("Answered")
    expect(page.locator("#answered-list > li", has_text=answered.text)).to_be_visible()

    # The next one on stage leaves the list for the "now answering" box; a pinned one is not on stage.
    top, second = (Question.objects.get(text=text) for text in OPEN_QUESTIONS[:2])
    actions.moderate(top, "now")
    expect(page.locator("#now-text")).to_have_text(top.text)
    expect(page.locator("#present-list > li", has_text=top.text)).to_have_count(0)
    actions.moderate(second, "pin")
    expect(page.locator("#present-list > li").first).to_have_class(re.compile("is-pinned"))
    expect(page.locator("#now-text")).to_have_text(top.text)


def test_presenter_shrinks_a_long_code_instead_of_breaking_it(new_page):
    Event.create("Long code", code="QUARTERLY-ALLHANDS-2")
    page = new_page(viewport=HD)
    page.goto("/e/QUARTERLY-ALLHANDS-2/present/")
    code = page.locator("#join-code")
    expect(code).to_have_text("QUARTERLY-ALLHANDS-2")
    fits = code.evaluate(
        """n => [n.scrollWidth <= n.clientWidth,
                 Math.abs(n.getBoundingClientRect().height - parseFloat(getComputedStyle(n).lineHeight)) < 1]"""
    )
    assert fits == [True, True]


def test_presenter_stacks_on_a_phone_and_shows_everything(event: Event, new_page):
    seed_room(event)
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/present/")
    expect(page.locator("#now")).to_be_visible()
    expect(page.locator("#present-list > li")).to_have_count(len(OPEN_QUESTIONS))
    # Waits out a layout under way (the first poll's render, then the fitting).
    expect(page.locator("#present-list > li:visible")).to_have_count(len(OPEN_QUESTIONS))
    expect(page.locator("#present-more")).to_be_hidden()
    assert horizontal_overflow(page) <= 0


def test_presenter_without_questions_invites_the_room(event: Event, new_page):
    page = new_page(viewport=HD)
    page.goto(f"/e/{CODE}/present/")
    expect(page.locator("#present-empty")).to_have_text("No questions yet. Scan the code and ask!")
    expect(page.locator("#now")).to_be_hidden()
    expect(page.locator("#answered")).to_be_hidden()


# --- what the pages read from the API -------------------------------------------------------------


def post_question(client, text: str):
    return client.post("/api/events/ALLHANDS/questions", json.dumps({"text": text}), content_type="application/json")


def test_a_refused_post_says_when_to_ask_again(event: Event, settings, still_clock):
    settings.POSTS_PER_MINUTE = 1
    asker = attendee_client()
    assert post_question(asker, "What is the roadmap?").status_code == 201
    refused = post_question(asker, "And the one after?")
    assert refused.status_code == 429
    # The limiter's clock stands half-way through its minute.
    assert refused["Retry-After"] == "30" and refused.json()["retry_after"] == 30


def test_merged_into_text_only_while_the_original_is_public(event: Event):
    original = Question.objects.create(event=event, text=ORIGINAL, attendee="someone-else")
    asker = attendee_client()
    duplicate = Question.objects.get(pk=post_question(asker, PARAPHRASE).json()["id"])
    actions.merge(duplicate, original, moderator=None)
    mine = asker.get("/api/events/ALLHANDS/questions").json()["mine"]
    assert [(q["merged_into"], q["merged_into_text"]) for q in mine] == [(original.pk, ORIGINAL)]
    actions.moderate(original, "hide")
    mine = asker.get("/api/events/ALLHANDS/questions").json()["mine"]
    assert [(q["merged_into"], q["merged_into_text"]) for q in mine] == [(original.pk, None)]
