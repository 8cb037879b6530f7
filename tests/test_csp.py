"""The Content-Security-Policy: sent with every page, and the pages' scripts keep working under it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from webapp.events.models import Event
from webapp.questions import actions

pytestmark = pytest.mark.django_db(transaction=True)

EXPECTED = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
    "frame-ancestors": {"'none'"},
}
PAGES = [
    "/",
    "/e/ALLHANDS/",
    "/e/ALLHANDS/moderate/",
    "/e/ALLHANDS/present/",
    "/e/ALLHANDS/dashboard/",
    "/accounts/login/",
    "/admin/login/",
    "/events/",
]


def policy(header: str) -> dict[str, set[str]]:
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name: set(values) for name, *values in directives}


@pytest.mark.parametrize("path", PAGES)
def test_every_page_sends_the_policy_and_runs_no_inline_code(event: Event, moderator: User, path: str):
    client = Client()
    if "/moderate/" in path or "/dashboard/" in path or path == "/events/":
        client.force_login(moderator)
    response = client.get(path)
    assert response.status_code == 200
    assert policy(response["Content-Security-Policy"]) == EXPECTED
    body = response.content.decode()
    # What the policy would block: inline scripts (json_script data blocks are never run), handlers, styles.
    for script in re.findall(r"<script\b[^>]*>", body):
        assert " src=" in script or 'type="application/json"' in script, script
    assert not re.search(r"<[a-z][^>]*\s(on[a-z]+|style)\s*=", body), "an inline handler or style attribute"
    assert "<style" not in body


needs_chromium = pytest.mark.skipif(shutil.which("chromium") is None, reason="no chromium (make browser installs it)")


@pytest.fixture
def watched_page(browser, live_server, moderator: User) -> Iterator[tuple]:
    """A signed-in moderator's page, and the console messages about the policy it logs."""
    context = browser.new_context(base_url=live_server.url)
    client = Client()
    client.force_login(moderator)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    violations: list[str] = []

    def listen(message) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    page.on("console", listen)
    yield page, violations
    context.close()


@needs_chromium
def test_attendee_and_moderator_pages_run_under_the_policy(event: Event, watched_page):
    from playwright.sync_api import expect

    actions.submit_question(event, "Will the slides be shared after the talk?", attendee="someone")
    actions.submit_question(event, "Are you going to share the slides afterwards?", attendee="someone-else")
    page, violations = watched_page
    page.goto("/e/ALLHANDS/")
    page.locator("#ask-text").fill("Is there parking nearby?")
    page.get_by_role("button", name="Send question").click()
    expect(page.locator("#ask-status")).to_have_text("Sent. Thank you!")  # a fetch by the page's script
    expect(page.locator("#questions > li", has_text="Is there parking nearby?")).to_be_visible()
    page.goto("/e/ALLHANDS/moderate/")
    expect(page.locator("#flags > li")).to_have_count(1)  # drawn by the script from the flags API
    expect(page.locator("#visible-empty")).not_to_have_text("Loading…")
    page.goto("/e/ALLHANDS/dashboard/")
    expect(page.locator("#fig-total")).to_have_text("3")
    page.goto("/e/ALLHANDS/present/")
    expect(page.locator("img.qr")).to_be_visible()
    assert page.locator("img.qr").evaluate("img => img.complete && img.naturalWidth > 0")
    assert violations == []


@needs_chromium
def test_the_policy_blocks_an_injected_inline_script(event: Event, watched_page):
    """The check above can fail: an inline script is refused, and the console says so."""
    page, violations = watched_page
    page.goto("/e/ALLHANDS/")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        " document.body.append(s); }"
    )
    page.wait_for_timeout(200)
    assert page.evaluate("() => window.ran") is None
    assert any("script-src" in text for text in violations), violations
