"""In Chromium: an open page revalidates its polls (304 while nothing changes) and shows a change
within 2 s."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from playwright.sync_api import Browser, expect

from webapp.events.models import Event
from webapp.questions import listing

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_open_page_polls_for_304s_and_shows_a_new_question_within_two_seconds(
    browser: Browser, live_server, monkeypatch
):
    Event.create("Platform all-hands", code="ALLHANDS")
    # The view runs only for a full answer; a 304 is answered before it (Chromium hands the page
    # its cached body, so the page sees 200 either way).
    built, answer = [], listing.listing
    monkeypatch.setattr(listing, "listing", lambda *args: built.append(args) or answer(*args))
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    polls: list[str | None] = []
    page.on(
        "request",
        lambda r: (
            polls.append(r.all_headers().get("if-none-match")) if "/api/events/ALLHANDS/questions" in r.url else None
        ),
    )
    page.goto("/e/ALLHANDS/")
    page.wait_for_timeout(4000)  # two or three polls of an unchanged event
    assert len(polls) >= 3 and all(polls[1:]), polls  # each poll after the first revalidates
    assert len(built) == 1, (built, polls)

    other = Client()
    other.get("/e/ALLHANDS/")
    response = other.post(
        "/api/events/ALLHANDS/questions",
        json.dumps({"text": "Is the keynote recorded?"}),
        content_type="application/json",
    )
    assert response.status_code == 201
    started = time.monotonic()
    expect(page.locator("#questions > li", has_text="Is the keynote recorded?")).to_have_count(1, timeout=2500)
    assert time.monotonic() - started <= 2.5
    context.close()
