"""Signing in: where a moderator lands, their events page, and the throttle on failed sign-ins."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.test import Client

from webapp.events.models import Event

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only"
LOCKED = f"Too many failed sign-ins: try again in {django_settings.AXES_COOLOFF_TIME.seconds // 60} minutes."
# Documentation addresses (RFC 5737): the test client sends nothing over a network.
ADDRESS_A, ADDRESS_B, ADDRESS_C = "203.0.113.5", "198.51.100.7", "192.0.2.9"


@pytest.fixture(autouse=True)
def _fast_hashes(settings) -> None:
    """Each failed sign-in hashes a password: a cheap hasher keeps 30 of them quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def sign_in(username: str, password: str, address: str = ADDRESS_A, path: str = "/accounts/login/"):
    return Client(REMOTE_ADDR=address).post(path, {"username": username, "password": password})


def test_sign_in_without_next_lands_on_your_events():
    user = User.objects.create_user("maria", password=PASSWORD)
    Event.create("Keynote", code="KEYNOTE").moderators.add(user)
    client = Client()
    response = client.post("/accounts/login/", {"username": "maria", "password": PASSWORD, "next": ""})
    assert response.status_code == 302 and response["Location"] == "/events/"
    page = client.get("/events/")
    assert page.status_code == 200 and "Keynote" in page.content.decode()
    response = client.post("/accounts/login/", {"username": "maria", "password": PASSWORD, "next": "/e/KEYNOTE/"})
    assert response["Location"] == "/e/KEYNOTE/"


def test_your_events_lists_the_events_you_moderate_with_their_pages():
    user = User.objects.create_user("maria", password=PASSWORD)
    mine = Event.create("<script>alert(1)</script> all-hands", code="MINE")
    mine.moderators.add(user)
    Event.create("Board meeting", code="BOARD")
    client = Client()
    client.force_login(user)
    body = client.get("/events/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt; all-hands" in body and "<script>alert" not in body
    for page in ("/e/MINE/moderate/", "/e/MINE/present/", "/e/MINE/dashboard/", "/e/MINE/"):
        assert f'href="{page}"' in body
    assert "BOARD" not in body and "Board meeting" not in body
    assert 'href="/events/">Your events</a>' in body


def test_your_events_needs_a_sign_in_and_shows_staff_every_event():
    assert Client().get("/events/")["Location"] == "/accounts/login/?next=/events/"
    Event.create("Board meeting", code="BOARD")
    client = Client()
    client.force_login(User.objects.create_user("plain", password=PASSWORD))
    assert "You moderate no event yet" in client.get("/events/").content.decode()
    client.force_login(User.objects.create_user("boss", password=PASSWORD, is_staff=True))
    assert 'href="/e/BOARD/moderate/"' in client.get("/events/").content.decode()


def test_a_few_failures_then_the_right_password_signs_in():
    User.objects.create_user("maria", password=PASSWORD)
    for _ in range(3):
        response = sign_in("maria", "wrong")
        assert response.status_code == 200 and "Please enter a correct username and password" in response.text
    assert sign_in("maria", PASSWORD).status_code == 302


def test_failures_lock_the_user_name_from_every_address():
    User.objects.create_user("maria", password=PASSWORD)
    User.objects.create_user("omar", password=PASSWORD)
    statuses = [sign_in("maria", f"guess-{i}").status_code for i in range(30)]
    assert statuses[0] == 200 and statuses[-1] == 429
    assert statuses.count(200) == django_settings.AXES_FAILURE_LIMIT - 1
    locked = sign_in("maria", PASSWORD, address=ADDRESS_B)
    assert locked.status_code == 429 and LOCKED in locked.text
    assert "_auth_user_id" not in locked.wsgi_request.session
    # The address is locked too, for every user name; another user elsewhere signs in.
    assert sign_in("omar", PASSWORD, address=ADDRESS_A).status_code == 429
    assert sign_in("omar", PASSWORD, address=ADDRESS_C).status_code == 302


def test_failures_lock_the_address_for_every_user_name():
    User.objects.create_user("maria", password=PASSWORD)
    statuses = [sign_in(f"someone-{i}", "guess").status_code for i in range(30)]
    assert statuses[-1] == 429
    assert LOCKED in sign_in("maria", PASSWORD, address=ADDRESS_A).text
    assert sign_in("maria", PASSWORD, address=ADDRESS_B).status_code == 302


def test_the_admin_sign_in_is_throttled_too():
    User.objects.create_user("boss", password=PASSWORD, is_staff=True)
    statuses = [sign_in("boss", f"guess-{i}", path="/admin/login/").status_code for i in range(30)]
    assert statuses[0] == 200 and statuses[-1] == 429
    assert LOCKED in sign_in("boss", PASSWORD, address=ADDRESS_B, path="/admin/login/").text
    assert sign_in("boss", PASSWORD, address=ADDRESS_B).status_code == 429  # one count for both forms
