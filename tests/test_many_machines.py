"""Many machines: two web instances (gunicorn) and two Celery workers as separate processes, one
PostgreSQL and one Redis (benchmarks/stack.py). Each process keeps its own FAISS index cache; the
database is the only shared state, so what one process stored must be found by every other."""

from __future__ import annotations

import http.cookiejar
import json
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import psycopg
import pytest

from benchmarks.stack import POSTGRES_URL, Stack

CODE = "MANY"
FIRST = "Will the slides of this talk be shared with us afterwards?"
PARAPHRASE = "Are you going to share the slides of the talk after the session?"


def postgres_error() -> str | None:
    try:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}"


pytestmark = [
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
    pytest.mark.skipif(postgres_error() is not None, reason=postgres_error() or ""),
]


class Page:
    """An attendee's browser on one web instance: the event page's cookies, then the API."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(f"{base}/e/{CODE}/", timeout=30).read()

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def post(self, text: str) -> tuple[int, dict[str, Any]]:
        csrf = next(c.value for c in self.jar if c.name == "csrftoken")
        request = urllib.request.Request(
            f"{self.base}/api/events/{CODE}/questions",
            data=json.dumps({"text": text}).encode(),
            headers={"Content-Type": "application/json", "X-CSRFToken": csrf},
        )
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def similar(self, text: str) -> list[int]:
        status, body = self.get(f"/api/events/{CODE}/similar?q={urllib.parse.quote(text)}")
        assert status == 200, body
        return [r["id"] for r in body["results"]]


def wait_row(stack: Stack, sql: str, args: list[Any], timeout: float = 30.0) -> tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    while True:
        with stack.db() as conn:
            row = conn.execute(sql, args).fetchone()
        if row is not None:
            return row
        assert time.monotonic() < deadline, f"timed out: {sql} {args}"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def stack():
    with Stack(web_instances=2, web_workers=2, web_threads=4, database="asktwice_many_machines") as stack:
        stack.create_events([CODE])
        yield stack


def test_two_web_instances_and_two_workers_are_separate_processes(stack: Stack):
    pids = {name: process.pid for name, process in stack.processes.items()}
    assert {"web1", "web2", "worker1", "worker2"} <= set(pids)
    assert len({pids["web1"], pids["web2"], pids["worker1"], pids["worker2"]}) == 4
    assert stack.web_ports[1] != stack.web_ports[2]
    for i in (1, 2):
        log = (stack.logs / f"web{i}.log").read_text()
        assert "Booting worker" in log and f":{stack.web_ports[i]}" in log


def test_a_question_processed_by_a_worker_is_found_and_flagged_through_the_other_instance(stack: Stack):
    one, two = Page(stack.web_url("", 1)), Page(stack.web_url("", 2))
    # Instance 2 caches the event's (empty) index first: it must catch up from the database later.
    assert two.similar(FIRST) == []

    status, first = one.post(FIRST)
    assert status == 201, first
    (processed_at,) = wait_row(
        stack, "SELECT processed_at FROM questions_question WHERE id = %s AND state = 'processed'", [first["id"]]
    )

    # The other instance's similar endpoint finds it, and a paraphrase posted there is flagged against it.
    assert first["id"] in two.similar(PARAPHRASE)
    status, second = two.post(PARAPHRASE)
    assert status == 201, second
    matched_id, flagged_at = wait_row(
        stack, "SELECT matched_id, created_at FROM questions_flag WHERE question_id = %s", [second["id"]]
    )
    assert matched_id == first["id"]
    after: float = (flagged_at - processed_at).total_seconds()
    assert 0 < after < 1.0, f"flagged {after:.3f} s after the first was processed"

    # Both instances list both questions, and the paraphrase's flag.
    for page in (one, two):
        status, listing = page.get(f"/api/events/{CODE}/questions?sort=time")
        assert status == 200
        ids = {q["id"] for q in listing["questions"]}
        assert {first["id"], second["id"]} <= ids, listing
