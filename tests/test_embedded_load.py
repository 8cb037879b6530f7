"""The embedded default (`make run`: runserver, eager tasks, in-process functions) under a room's load.

Each test serves the app as `make run` does, in its own process on its own database (a SQLite
file, or a fresh PostgreSQL database), and posts to it over HTTP as attendees' browsers do
(benchmarks/embedded.py holds the pieces, and prints the same figures).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.embedded import (
    CODE,
    POSTGRES,
    Attendee,
    Hanging,
    NoPostgres,
    Served,
    burst,
    create_postgres,
    drop_postgres,
    hanging_posts,
)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db.sqlite3'}"
        return
    try:
        name = create_postgres()
    except NoPostgres as exc:
        pytest.skip(str(exc))
    try:
        yield f"{POSTGRES}/{name}"
    finally:
        drop_postgres(name)


def test_200_parallel_posts_from_50_attendees_are_all_accepted_and_processed(tmp_path: Path, database_url: str):
    served = Served(tmp_path, database_url)
    try:
        result = burst(served, posts=200, attendees=50, settle_s=30)
    finally:
        served.stop()
    assert result["status_counts"] == {"201": 200}, result
    assert result["processed"] == 200 and result["left_pending"] == 0 and result["failed"] == 0, result
    assert result["all_processed_s"] is not None and result["all_processed_s"] <= 30, result
    log = (tmp_path / f"server-{served.port}.log").read_text()
    assert "database is locked" not in log and "Traceback" not in log, log[-3000:]


def test_a_hanging_function_never_holds_a_post_longer_than_the_bounded_wait(tmp_path: Path, database_url: str):
    hanging = Hanging()
    served = Served(
        tmp_path, database_url, INFERENCE_BACKEND="http", INFERENCE_URL=hanging.url, INFERENCE_TIMEOUT_S="10"
    )
    try:
        result = hanging_posts(served, posts=20, attendees=5)
    finally:
        served.stop()
        hanging.close()
    assert result["status_counts"] == {"201": 20}, result
    assert result["post"]["max_ms"] <= 1000, result  # the p99 of 20 posts is the slowest
    assert result["states"] == ["pending"], result
    # The page stays live meanwhile, and every question is there.
    assert result["listed"] == 20 and result["list_ms"] < 1000, result


def test_a_question_left_pending_is_swept_by_the_web_process_without_celery(tmp_path: Path):
    served = Served(
        tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", QUESTION_SWEEP_INTERVAL_S="1", QUESTION_RESEND_AFTER_S="1"
    )
    try:
        # Stored by another process that died before its send (as a killed web worker would leave it).
        served.manage(
            "shell",
            "-c",
            "from webapp.events.models import Event; from webapp.questions.models import Question; "
            f"Question.objects.create(event=Event.objects.get(code='{CODE}'), text='Is lunch included?', "
            "attendee='gone', enqueued_at=None)",
        )
        attendee = Attendee(served)
        deadline = time.monotonic() + 20
        while True:
            questions = attendee.questions()
            if questions and questions[0]["state"] == "processed":
                break
            assert time.monotonic() < deadline, questions
            time.sleep(0.3)
    finally:
        served.stop()
    assert questions[0]["text"] == "Is lunch included?"
