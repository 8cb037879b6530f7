"""Answers, "now answering" and an attendee's own edits, as people do them in a real Chromium (Debian's,
through pytest-playwright) against a live server: a moderator on the moderation page, attendees on
the event page, the projector on the presenter page."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from webapp.events.models import Event
from webapp.questions import actions, live
from webapp.questions.models import Flag, Question

pytestmark = pytest.mark.django_db(transaction=True)

CODE = "ALLHANDS"
PHONE = {"width": 390, "height": 844}


def ask(page: Page, text: str) -> None:
    page.locator("#ask-text").fill(text)
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-status")).to_have_text("Sent. Thank you!")


def visible_item(page: Page, text: str):
    return page.locator("#visible > li", has_text=text)


def test_a_moderator_puts_a_question_on_stage_and_answers_it_from_the_keyboard(event: Event, moderator: User, new_page):
    first = Question.objects.create(event=event, text="Will the slides be shared?", attendee="a", state="processed")
    Question.objects.create(event=event, text="Is there a team offsite this year?", attendee="b", state="processed")
    attendee = new_page(viewport=PHONE)
    attendee.goto(f"/e/{CODE}/")
    projector = new_page(viewport={"width": 1920, "height": 1080})
    projector.goto(f"/e/{CODE}/present/")
    expect(attendee.locator("#now")).to_be_hidden()

    page = new_page(moderator)
    page.goto(f"/e/{CODE}/moderate/")
    row = visible_item(page, first.text)
    expect(row).to_be_visible()
    # Select it by keyboard (j moves through the items) and press n: on stage.
    row.focus()
    page.keyboard.press("n")
    expect(page.locator("#mod-status")).to_have_text("On stage now.")
    expect(row.get_by_role("button", name="Now answering")).to_have_attribute("aria-pressed", "true")
    expect(attendee.locator("#now-text")).to_have_text(first.text)
    expect(attendee.locator("#now-label")).to_have_text("Now answering")
    expect(attendee.locator("#questions > li").first.locator(".badge-now")).to_have_text("now answering")
    expect(projector.locator("#now-text")).to_have_text(first.text)

    # Write the answer: Tab to the button, type, save with Enter on the button.
    row.get_by_role("button", name="Write answer").focus()
    page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name=f"Answer to: {first.text}")
    expect(box).to_be_focused()
    page.keyboard.type("Yes: they go out by email tonight.")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Save answer")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#mod-status")).to_have_text("Answer saved: attendees see it now.")
    expect(row.locator(".answer-text")).to_have_text("Yes: they go out by email tonight.")
    expect(row.get_by_role("button", name="Answered")).to_have_attribute("aria-pressed", "true")

    # Attendees: off the stage, in the Answered tab with its answer; the projector ticks it.
    expect(attendee.locator("#now")).to_be_hidden()
    attendee.get_by_role("tab", name=re.compile("^Answered")).click()
    answered = attendee.locator("#answered-list > li", has_text=first.text)
    expect(answered.locator(".answer-text")).to_have_text("Yes: they go out by email tonight.")
    expect(projector.locator("#answered-list > li", has_text=first.text)).to_be_visible()
    assert Question.objects.get(pk=first.pk).answered_by == moderator


def test_a_poll_does_not_disturb_an_answer_being_written(event: Event, moderator: User, new_page):
    q = Question.objects.create(event=event, text="What about parking?", attendee="a", state="processed")
    page = new_page(moderator)
    page.goto(f"/e/{CODE}/moderate/")
    visible_item(page, q.text).get_by_role("button", name="Write answer").click()
    box = page.get_by_role("textbox", name=f"Answer to: {q.text}")
    box.fill("Level -2 of the garage")
    Question.objects.filter(pk=q.pk).update(vote_count=5)  # the next poll brings a change
    Question.objects.create(event=event, text="Another question meanwhile?", attendee="b", state="processed")
    live.changed(CODE)
    expect(visible_item(page, "Another question meanwhile?")).to_be_visible()
    expect(box).to_have_value("Level -2 of the garage")
    expect(box).to_be_focused()
    page.keyboard.press("Escape")
    expect(visible_item(page, q.text).get_by_role("button", name="Write answer")).to_be_focused()
    assert Question.objects.get(pk=q.pk).answer == ""


def test_an_attendee_edits_their_question_and_it_is_checked_again(event: Event, new_page):
    actions.submit_question(event, "Will the slides be shared after the talk?", attendee="someone")
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, "Where is the nearest parking garage?")
    mine = Question.objects.get(text="Where is the nearest parking garage?")
    item = page.locator(f"#q-{mine.pk}")
    item.get_by_role("button", name="Edit").click()
    box = item.get_by_role("textbox", name="Edit your question")
    expect(box).to_be_focused()
    expect(box).to_have_value("Where is the nearest parking garage?")
    box.fill("Are you going to share the slides afterwards?")
    page.keyboard.press("Tab")
    expect(item.get_by_role("button", name="Save")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#ask-status")).to_have_text("Saved.")
    expect(item.locator(".text")).to_have_text("Are you going to share the slides afterwards?")
    expect(item.locator(".edited")).to_have_text("edited")
    expect(item.get_by_role("button", name="Edit")).to_be_focused()

    # The new words are processed again: the duplicate is flagged for the moderators.
    expect(item.locator(".badge-processing")).to_have_count(0)
    edited = Question.objects.get(pk=mine.pk)
    assert edited.state == Question.State.PROCESSED
    assert list(Flag.objects.filter(question=edited).values_list("matched__text", flat=True)) == [
        "Will the slides be shared after the talk?"
    ]
    # Others see the new words.
    other = new_page(viewport=PHONE)
    other.goto(f"/e/{CODE}/")
    expect(other.locator(f"#q-{mine.pk} .text")).to_have_text("Are you going to share the slides afterwards?")
    expect(other.locator(f"#q-{mine.pk}").get_by_role("button", name="Edit")).to_have_count(0)


def test_an_attendee_withdraws_their_question_after_confirming(event: Event, new_page):
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, "Can I bring a guest?")
    mine = Question.objects.get(text="Can I bring a guest?")
    other = new_page(viewport=PHONE)
    other.goto(f"/e/{CODE}/")
    expect(other.locator(f"#q-{mine.pk}")).to_be_visible()

    page.get_by_role("tab", name=re.compile("^Mine")).click()
    item = page.locator(f"#mine-{mine.pk}")
    item.get_by_role("button", name="Withdraw").click()
    expect(item).to_contain_text("Withdraw this question? It leaves the list for everyone.")
    expect(item.get_by_role("button", name="Keep it")).to_be_focused()
    page.keyboard.press("Enter")  # keep it
    expect(item.get_by_role("button", name="Withdraw")).to_be_focused()
    item.get_by_role("button", name="Withdraw").click()
    item.get_by_role("group", name="Withdraw your question").get_by_role("button", name="Withdraw").click()
    expect(page.locator("#ask-status")).to_have_text("Your question was withdrawn.")
    expect(item).to_contain_text("Withdrawn by you")
    expect(item.get_by_role("button", name="Edit")).to_have_count(0)
    expect(other.locator(f"#q-{mine.pk}")).to_have_count(0)
    assert Question.objects.get(pk=mine.pk).status == Question.Status.WITHDRAWN


def test_the_edit_buttons_go_when_the_window_closes(event: Event, new_page, settings):
    settings.QUESTION_EDIT_WINDOW_S = 3
    page = new_page(viewport=PHONE)
    page.goto(f"/e/{CODE}/")
    ask(page, "Is lunch included?")
    item = page.locator("#questions > li", has_text="Is lunch included?")
    expect(item.get_by_role("button", name="Edit")).to_be_visible()
    expect(item.get_by_role("button", name="Edit")).to_have_count(0, timeout=8000)
