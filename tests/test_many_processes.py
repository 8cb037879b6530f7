"""Nothing in the app may assume one process: two web servers on one database and one cache."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from benchmarks.embedded import CODE, Attendee, Served

CACHE_URL = "redis://127.0.0.1:6379/14"  # not the Celery tests' database (15)


@pytest.fixture
def shared_cache() -> str:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(CACHE_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis not reachable at {CACHE_URL}: {exc}")
    yield CACHE_URL
    client.flushdb()


def test_two_web_processes_count_one_attendee_against_one_rate_limit(tmp_path: Path, shared_cache: str):
    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    env = {"CACHE_URL": shared_cache, "POSTS_PER_MINUTE": "6"}
    first = Served(tmp_path, database, **env)
    second = Served(tmp_path, database, create=False, **env)
    try:
        attendee = Attendee(first)  # the same identity is good on both (one SECRET_KEY)
        # The limit counts per minute of the clock: start well inside one, or the count would reset.
        while time.time() % 60 > 40:
            time.sleep(1)
        window = time.time() // 60
        statuses = []
        for i in range(10):
            attendee.served = (first, second)[i % 2]
            statuses.append(attendee.post(f"Question number {i} about the venue and the schedule?")[0])
        assert time.time() // 60 == window, "the posts took over 20 s"
        attendee.served = first
        stored = len(attendee.questions())
    finally:
        first.stop()
        second.stop()
    # Six a minute over both processes, not six on each (twelve would all be 201).
    assert statuses == [201] * 6 + [429] * 4, statuses
    assert stored == 6


def test_a_cache_that_is_down_lets_posts_through(tmp_path: Path):
    served = Served(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", CACHE_URL="redis://127.0.0.1:1/0")
    try:
        attendee = Attendee(served)
        status, _, body = attendee.post("Is the cache needed to ask a question?")
        with urllib.request.urlopen(f"{served.url}/api/events/{CODE}/questions", timeout=10) as response:
            listed = json.loads(response.read())["questions"]
    finally:
        served.stop()
    assert status == 201 and body["state"] in ("pending", "processed")  # the POST waits 0.5 s at most
    assert [q["text"] for q in listed] == ["Is the cache needed to ask a question?"]


def test_behind_a_trusted_proxy_each_client_is_counted_under_its_own_address(settings):
    from django.test import RequestFactory

    from webapp.core.ratelimit import client_address

    factory = RequestFactory()
    direct = factory.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(direct) == "203.0.113.7"  # no proxy trusted: the header is ignored
    settings.TRUSTED_PROXIES = frozenset({"10.0.0.2"})
    proxied = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.1")
    assert client_address(proxied) == "198.51.100.1"  # the left part is the client's own claim
    forged = factory.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert client_address(forged) == "203.0.113.7"  # only a trusted proxy's header counts
    garbage = factory.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="not-an-address")
    assert client_address(garbage) == "10.0.0.2"
