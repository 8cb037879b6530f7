from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
# Tests of the public data sets (and of the bench, whose texts are STSb's) skip on the repository alone.
needs_stsb = pytest.mark.skipif(
    not (SHARED_DATA / "stsb" / "stsb-en-test.csv").is_file(), reason="needs ../shared/data/stsb beside the checkout"
)
needs_shared_pairs = pytest.mark.skipif(
    not (SHARED_DATA / "pairs").is_dir(), reason="needs ../shared/data/pairs beside the checkout"
)
os.environ.setdefault("EMBEDDINGS_THREADS", "1")
# Playwright runs an asyncio loop in the test thread; Django would refuse ORM calls (and the test
# database set-up) beside it. The browser tests touch the database only from plain sync code.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def run_module(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, Any, str]:
    """Run ``python -m module args``; returns (exit code, the parsed last stdout line or None, stderr)."""
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    lines = out.stdout.strip().splitlines()
    try:
        parsed = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        parsed = None
    return out.returncode, parsed, out.stderr


@pytest.fixture
def write_tsv(tmp_path: Path):
    def write(name: str, header: str, rows: list[str]) -> Path:
        path = tmp_path / name
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    """pytest-playwright's browser is Debian's Chromium: Playwright's own builds cannot be downloaded here."""
    return {**browser_type_launch_args, "executable_path": "/usr/bin/chromium"}


@pytest.fixture
def new_page(browser: Browser, live_server) -> Iterator[Callable[..., Page]]:
    """``new_page(user=None, viewport=None)``: a page in a fresh browser context, so its own cookies
    (one attendee, or ``user`` signed in), at ``viewport`` (Playwright's 1280 x 720 without one).

    No page may break the Content-Security-Policy: the test fails if Chromium reports a violation.
    """
    from django.test import Client

    contexts, violations = [], []

    def make(user: User | None = None, viewport: dict[str, int] | None = None) -> Page:
        context = browser.new_context(base_url=live_server.url, **({"viewport": viewport} if viewport else {}))
        contexts.append(context)
        if user is not None:
            client = Client()
            client.force_login(user)
            cookie = client.cookies["sessionid"]
            context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
        page = context.new_page()
        page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
        return page

    yield make
    for context in contexts:
        context.close()
    assert violations == []


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    """Rate-limit counters live in the cache: every test starts with none."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def event():
    """An open event with join code ALLHANDS (tests that need a database only)."""
    from webapp.events.models import Event

    return Event.create("Platform all-hands", code="ALLHANDS")


@pytest.fixture
def owner():
    """The user who created the event, in the modules whose ``event`` names one."""
    from django.contrib.auth.models import User

    return User.objects.create_user("olga", password="pw-for-tests-only")


@pytest.fixture
def moderator(event):
    """A plain user who moderates ``event`` (the module's own ``event`` where it has one)."""
    from django.contrib.auth.models import User

    user = User.objects.create_user("mod", password="pw-for-tests-only")
    event.moderators.add(user)
    return user


@pytest.fixture
def still_clock(monkeypatch) -> float:
    """Rate limits count per fixed minute: a test that runs across a minute boundary would get a
    fresh window halfway through. Stop the limiter's clock in the middle of a minute."""
    import types

    from webapp.core import ratelimit

    now = (time.time() // 60) * 60 + 30
    monkeypatch.setattr(ratelimit, "time", types.SimpleNamespace(time=lambda: now))
    return now


@pytest.fixture(autouse=True)
def _processing_waits_in_tests(settings):
    """Tests read a posted question's processing from the POST's answer: let it wait for it.
    (And votes bump the live version at once.)

    The bounded wait of the embedded default (QUESTION_INLINE_WAIT_S) has its own tests
    (tests/test_embedded_load.py), and no sweeper runs in the test process.
    """
    settings.QUESTION_INLINE_WAIT_S = 120
    settings.QUESTION_SWEEP_IN_WEB = False
    # Every vote shows at once; the coalescing of votes has its own tests (tests/test_live_votes.py).
    settings.LIVE_VOTE_WINDOW_S = 0


def attendee_client(code: str = "ALLHANDS", **defaults: Any):
    """A test client that opened the event page of ``code``: it holds the attendee identity the page
    gives, and has joined that event (the API refuses votes and posts without one)."""
    from django.test import Client

    client = Client(**defaults)
    response = client.get(f"/e/{code}/")
    assert response.status_code == 200 and "attendee" in response.cookies, response.status_code
    return client
