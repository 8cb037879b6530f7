"""Nothing in the app may assume one process: two web servers on one database and one cache."""

from __future__ import annotations

import json
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
        statuses = []
        for i in range(10):
            attendee.served = (first, second)[i % 2]
            statuses.append(attendee.post(f"Question number {i} about the venue and the schedule?")[0])
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
    assert status == 201 and body["state"] == "processed"
    assert [q["text"] for q in listed] == ["Is the cache needed to ask a question?"]
