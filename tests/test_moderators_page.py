"""The moderators page (/e/<code>/moderators/): its owner removes a moderator, who loses the event's
moderation at once; who may remove, and what a bad request gets."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.test import Client
from playwright.sync_api import expect

from tests.a11y import assert_accessible
from webapp.events import actions
from webapp.events.models import Event

pytestmark = pytest.mark.django_db

URL = "/e/ALLHANDS/moderators/"


@pytest.fixture(autouse=True)
def _fast_hashes(settings) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def event(owner: User) -> Event:
    return Event.create("Platform all-hands", code="ALLHANDS", created_by=owner)


def signed_in(user: User, **defaults) -> Client:
    client = Client(**defaults)
    client.force_login(user)
    return client


def remove(client: Client, username: str, url: str = URL):
    return client.post(url, {"action": "remove", "username": username})


def moderator_names(event: Event) -> list[str]:
    return sorted(event.moderators.values_list("username", flat=True))


def test_the_owner_removes_a_moderator_who_then_gets_403(event: Event, owner: User, moderator: User):
    other = Event.create("Design review", code="DESIGN", created_by=owner)
    other.moderators.add(moderator)
    as_mod = signed_in(moderator)
    assert as_mod.get("/e/ALLHANDS/moderate/").status_code == 200
    page = signed_in(owner).get(URL)
    assert b'<button type="submit">Remove<span class="visually-hidden"> mod</span></button>' in page.content

    response = remove(signed_in(owner), "mod")
    assert response.status_code == 200
    assert b"<strong>mod</strong> no longer moderates this event." in response.content
    assert b'id="moderators"' in response.content and b"> mod</span>" not in response.content
    assert moderator_names(event) == []
    # Their very next requests, with the session they already had: the page and the API refuse.
    assert as_mod.get("/e/ALLHANDS/moderate/").status_code == 403
    assert as_mod.get("/api/events/ALLHANDS/flags").status_code == 403
    # The account and their other event stay.
    assert User.objects.filter(username="mod").exists() and other.is_moderator(moderator)
    assert as_mod.get("/e/DESIGN/moderate/").status_code == 200


def test_removing_someone_not_on_the_list_is_a_400_naming_the_field(event: Event, owner: User, moderator: User):
    User.objects.create_user("maria", password="pw-for-tests-only")
    client = signed_in(owner)
    for username, message in [
        ("maria", "User name: maria does not moderate this event"),
        ("nobody", "User name: nobody does not moderate this event"),
        ("", "User name: This field is required."),
    ]:
        response = remove(client, username)
        assert response.status_code == 400, username
        errors = re.search(r'<div class="note" role="alert" id="remove-errors">(.*?)</div>', response.text, re.S)
        assert errors and message in errors.group(1), response.text
    unknown_action = client.post(URL, {"action": "demote", "username": "mod"})
    assert unknown_action.status_code == 400 and "Action: Select a valid choice." in unknown_action.text
    assert moderator_names(event) == ["mod"]


def test_only_the_owner_or_staff_remove_moderators(event: Event, owner: User, moderator: User):
    second = User.objects.create_user("maria", password="pw-for-tests-only")
    event.moderators.add(second)
    # A moderator of this event, the owner of another, a moderator of another: all refused.
    assert remove(signed_in(moderator), "maria").status_code == 403
    otto = User.objects.create_user("otto", password="pw-for-tests-only")
    other = Event.create("Other", code="OTHER", created_by=otto)
    assert remove(signed_in(otto), "maria").status_code == 403
    other.moderators.add(second)
    assert remove(signed_in(second), "mod").status_code == 403
    assert remove(signed_in(second), "mod", url="/e/OTHER/moderators/").status_code == 403
    anonymous = remove(Client(), "maria")
    assert anonymous.status_code == 302 and anonymous["Location"] == f"/accounts/login/?next={URL}"
    assert moderator_names(event) == ["maria", "mod"]
    # Removing from one event leaves the user's other events alone.
    assert remove(signed_in(otto), "maria", url="/e/OTHER/moderators/").status_code == 200
    assert moderator_names(event) == ["maria", "mod"] and moderator_names(other) == []
    staff = signed_in(User.objects.create_user("boss", password="pw-for-tests-only", is_staff=True))
    assert remove(staff, "maria").status_code == 200
    assert moderator_names(event) == ["mod"]
    assert remove(signed_in(owner), "mod", url="/e/NOSUCH/moderators/").status_code == 404


def test_removing_needs_the_csrf_token(event: Event, owner: User, moderator: User):
    client = signed_in(owner, enforce_csrf_checks=True)
    assert remove(client, "mod").status_code == 403
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', client.get(URL).text).group(1)
    removed = client.post(URL, {"action": "remove", "username": "mod", "csrfmiddlewaretoken": token})
    assert removed.status_code == 200 and moderator_names(event) == []


def test_the_add_and_create_forms_each_show_their_own_errors(event: Event, owner: User, moderator: User):
    client = signed_in(owner)
    page = client.get(URL).text
    for key, button in [("add", "Add moderator"), ("create", "Create moderator")]:
        assert f'<label for="{key}-username">User name</label>' in page
        assert f'<input type="hidden" name="action" value="{key}">' in page
        assert f'<button type="submit">{button}</button>' in page
    taken = client.post(URL, {"action": "create", "username": "mod"}).text
    assert 'aria-describedby="create-errors"' in taken and 'aria-describedby="add-errors"' not in taken
    assert '<div id="create-errors"><ul class="errorlist"><li>User name: a user named' in taken


def test_remove_moderator_refuses_a_second_removal(event: Event, moderator: User):
    assert actions.remove_moderator(event, "mod") == moderator
    with pytest.raises(ValidationError, match="mod does not moderate this event"):
        actions.remove_moderator(event, "mod")


@pytest.mark.django_db(transaction=True)
def test_the_owner_removes_a_moderator_by_clicking(event: Event, owner: User, moderator: User, new_page):
    User.objects.create_user("maria", password="pw-for-tests-only")
    event.moderators.add(User.objects.get(username="maria"))
    removed = new_page(moderator)
    removed.goto("/e/ALLHANDS/moderate/")
    expect(removed.locator("h1")).to_have_text("Moderate: Platform all-hands")

    page = new_page(owner)
    page.goto(URL)
    names = page.locator("#moderators .moderator-name")
    expect(names).to_have_text(["maria", "mod"])
    page.get_by_role("button", name="Remove mod", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("mod no longer moderates this event.")
    expect(names).to_have_text(["maria"])
    expect(page.get_by_role("button", name="Remove mod", exact=True)).to_have_count(0)
    assert_accessible(page, "the moderators page after a removal")

    removed.reload()
    expect(removed.locator("h1")).to_have_text("Forbidden")
