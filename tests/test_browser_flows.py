"""The pages in a real Chromium (pytest-playwright's browser, Debian's binary) against a live server.

The server runs the embedded defaults: questions are embedded, scored and flagged in the request,
after commit, as the Celery task does in production.
"""

from __future__ import annotations

import re
import time

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.models import Question

# transaction=True: the live server's thread must see the test's rows, and on_commit must fire.
pytestmark = pytest.mark.django_db(transaction=True)

CODE = "ALLHANDS"
ORIGINAL = "Will the slides be shared after the talk?"
PARAPHRASE = "Are you going to share the slides afterwards?"


@pytest.fixture
def event() -> Event:
    return Event.create("Platform all-hands", code=CODE)


def moderator_of(event: Event, username: str = "mod") -> User:
    user = User.objects.create_user(username, password="pw-for-tests-only")
    event.moderators.add(user)
    return user


def ask(page: Page, text: str) -> None:
    page.locator("#ask-text").fill(text)
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-status")).to_have_text("Sent. Thank you!")
    expect(page.locator("#ask-text")).to_have_value("")


def question_item(page: Page, text: str):
    return page.locator("#questions > li", has_text=text)


def test_paraphrase_is_flagged_merged_and_the_votes_add_up(event: Event, new_page):
    asker = new_page()
    asker.goto(f"/e/{CODE.lower()}/")
    ask(asker, ORIGINAL)
    ask(asker, PARAPHRASE)
    expect(asker.locator("#questions > li")).to_have_count(2)

    # One vote on each question, from two attendees.
    question_item(asker, ORIGINAL).locator("button.vote").click()
    expect(question_item(asker, ORIGINAL).locator("button.vote")).to_be_disabled()
    voter = new_page()
    voter.goto(f"/e/{CODE}/")
    question_item(voter, PARAPHRASE).locator("button.vote").click()
    expect(question_item(voter, PARAPHRASE).locator(".vote-count")).to_have_text("1")
    expect(question_item(voter, PARAPHRASE).locator("button.vote")).to_be_disabled()

    moderator = new_page(moderator_of(event))
    moderator.goto(f"/e/{CODE}/moderate/")
    flags = moderator.locator("#flags > li")
    expect(flags).to_have_count(1)
    expect(flags.locator(".label + .text")).to_have_text([PARAPHRASE, ORIGINAL])
    expect(flags.locator(".badge-duplicate")).to_have_text("duplicate")
    expect(flags.locator(".similarity")).to_have_text(re.compile(r"^\d{2,3}%$"))

    # The attendee starts typing; the live update must not take the draft away.
    asker.locator("#ask-text").fill("A draft in progress")
    moderator.keyboard.press("j")
    expect(flags.first).to_be_focused()
    moderator.keyboard.press("m")
    expect(moderator.locator("#mod-status")).to_have_text("Merged.")
    expect(flags).to_have_count(0)

    # No reload: the attendee page follows by polling.
    expect(asker.locator("#questions > li")).to_have_count(1)
    expect(question_item(asker, ORIGINAL).locator(".vote-count")).to_have_text("2")
    original_id = question_item(asker, ORIGINAL).get_attribute("data-key")
    asker.get_by_role("tab", name=re.compile("^Mine")).click()
    merged = asker.locator("#mine > li", has_text=PARAPHRASE)
    expect(merged).to_contain_text(f"Merged into “{ORIGINAL}”")
    expect(merged.get_by_role("link")).to_have_attribute("href", f"#q-{original_id}")
    expect(asker.locator("#ask-text")).to_have_value("A draft in progress")
    # The votes outlive a reload (localStorage) and the server agrees.
    voter.reload()
    expect(question_item(voter, ORIGINAL).locator(".vote-count")).to_have_text("2")


def test_typing_a_paraphrase_suggests_the_question_already_asked(event: Event, new_page):
    actions.submit_question(event, ORIGINAL, attendee="someone-else")
    page = new_page()
    page.goto(f"/e/{CODE}/")
    expect(question_item(page, ORIGINAL)).to_be_visible()
    page.locator("#ask-text").press_sequentially("Are the slides going to be shared?", delay=5)
    expect(page.locator("#ask-counter")).to_have_text("34 / 300")
    suggestion = page.locator("#suggestion-list > li", has_text=ORIGINAL)
    expect(suggestion).to_be_visible()
    expect(page.locator("#suggestions")).to_contain_text("Already asked?")

    suggestion.get_by_role("button", name=re.compile("Upvote")).click()
    expect(page.locator("#ask-status")).to_have_text("Your vote went to the question already asked.")
    expect(page.locator("#ask-text")).to_have_value("")
    expect(page.locator("#suggestions")).to_be_hidden()
    expect(question_item(page, ORIGINAL).locator(".vote-count")).to_have_text("1")
    expect(question_item(page, ORIGINAL).locator("button.vote")).to_be_disabled()


def test_dashboard_draws_its_charts(event: Event, new_page):
    for text in (ORIGINAL, PARAPHRASE, "The wifi in the main hall has been awful all morning"):
        actions.submit_question(event, text, attendee="someone")
    page = new_page(moderator_of(event))
    page.goto(f"/e/{CODE}/dashboard/")
    expect(page.locator("#fig-total")).to_have_text("3")
    expect(page.locator("#fig-raised")).to_have_text("1")

    bars = page.locator("#chart-sentiment svg rect.bar")
    expect(bars).to_have_count(3)
    values = [int(v) for v in bars.evaluate_all("bars => bars.map(b => b.dataset.value)")]
    assert sum(values) == 3 and values[0] >= 1  # the wifi complaint is negative

    layers = page.locator("#chart-course svg path.layer")
    expect(layers).to_have_count(3)
    assert all(d.endswith("Z") for d in layers.evaluate_all("paths => paths.map(p => p.getAttribute('d'))"))

    rate = page.locator("#chart-rate svg rect.bar")
    expect(rate.first).to_be_visible()
    counts = rate.evaluate_all("bars => bars.map(b => Number(b.dataset.count))")
    assert sum(counts) == 3
    expect(page.locator("#most-negative > li").first).to_contain_text("wifi")
    expect(page.get_by_role("link", name="Export CSV")).to_have_attribute("href", f"/e/{CODE}/export.csv")


def test_moderator_approves_pins_and_retries(event: Event, new_page):
    Event.objects.filter(pk=event.pk).update(premoderation=True)
    failed = Question.objects.create(
        event=event, text="Where is the nearest parking garage?", attendee="x", state=Question.State.FAILED
    )
    asker = new_page()
    asker.goto(f"/e/{CODE}/")
    asker.locator("#ask-text").fill("What is the roadmap for next quarter?")
    asker.get_by_role("button", name="Send question").click()
    expect(asker.locator("#ask-status")).to_have_text("Sent: it appears once a moderator approves it.")
    expect(asker.locator("#mine > li")).to_contain_text("Awaiting approval")

    moderator = new_page(moderator_of(event))
    moderator.goto(f"/e/{CODE}/moderate/")
    waiting = moderator.locator("#awaiting > li")
    expect(waiting).to_have_count(1)
    moderator.keyboard.press("j")  # no flags: the first item is the waiting question
    expect(waiting).to_be_focused()
    moderator.keyboard.press("a")
    expect(waiting).to_have_count(0)
    expect(question_item(asker, "roadmap")).to_be_visible()

    pin = moderator.locator("#visible > li", has_text="roadmap").get_by_role("button", name="Pin")
    pin.click()
    expect(pin).to_have_attribute("aria-pressed", "true")
    expect(pin).to_be_focused()  # the rebuilt row keeps the keyboard where it was
    expect(question_item(asker, "roadmap").locator(".badge-pinned")).to_have_text("pinned")

    retry = moderator.locator("#failed > li").get_by_role("button", name="Retry")
    retry.click()
    expect(moderator.locator("#failed > li")).to_have_count(0)
    # The row leaves the failed list as soon as the question is pending again (a poll may show
    # that while the retry's processing still runs), so wait for the processing to land.
    for _ in range(100):
        failed.refresh_from_db()
        if failed.state != Question.State.PENDING:
            break
        time.sleep(0.1)
    assert failed.state == Question.State.PROCESSED


def test_moderator_of_another_event_is_refused(event: Event, new_page):
    page = new_page(moderator_of(Event.create("Other event", code="OTHER"), "stranger"))
    response = page.goto(f"/e/{CODE}/moderate/")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Forbidden")
    assert page.goto("/e/OTHER/moderate/").status == 200


def test_a_page_without_an_identity_reads_but_cannot_ask_or_vote(event: Event, new_page, settings):
    actions.submit_question(event, ORIGINAL, attendee="someone-else")
    settings.ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS = 1
    first = new_page()
    first.goto(f"/e/{CODE}/")
    late = new_page()
    late.goto(f"/e/{CODE}/")  # the address's one new identity this minute went to the first page
    expect(question_item(late, ORIGINAL)).to_be_visible()
    expect(late.locator("#busy-note")).to_be_visible()
    expect(late.locator("#ask-text")).to_be_disabled()
    expect(question_item(late, ORIGINAL).locator("button.vote")).to_be_disabled()
    expect(first.locator("#busy-note")).to_be_hidden()
    question_item(first, ORIGINAL).locator("button.vote").click()
    expect(question_item(late, ORIGINAL).locator(".vote-count")).to_have_text("1")  # the poll still reads


def test_a_page_whose_identity_is_gone_says_to_reload(event: Event, new_page):
    actions.submit_question(event, ORIGINAL, attendee="someone-else")
    page = new_page()
    page.goto(f"/e/{CODE}/")
    page.context.clear_cookies(name="attendee")
    question_item(page, ORIGINAL).locator("button.vote").click()
    expect(page.locator("#ask-status")).to_have_text("This page lost your attendee identity: reload it to ask or vote.")
    page.reload()
    question_item(page, ORIGINAL).locator("button.vote").click()
    expect(question_item(page, ORIGINAL).locator(".vote-count")).to_have_text("1")
    assert Question.objects.get(text=ORIGINAL).vote_count == 1
