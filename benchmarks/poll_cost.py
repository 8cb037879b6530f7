"""What a page's poll costs the server: unchanged (a 304 from the cache) and changed (the full list).

    python -m benchmarks.poll_cost [--questions 200] [--polls 2000]

In one process, on a throw-away SQLite database (or DATABASE_URL), through Django's whole request
path (middleware, view, serialisation; no network): an event of ``--questions`` processed
questions, polled by one attendee as the page does. "unchanged" sends the last ETag back;
"changed" bumps the event's version before each poll, so every poll reads and serialises the list.
Prints one JSON line: median and p99 in milliseconds, and the database queries per poll.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def measure(questions: int, polls: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="poll-cost-"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from webapp.events.models import Event
    from webapp.questions import live
    from webapp.questions.models import Question

    call_command("migrate", verbosity=0)
    event = Event.create("Poll cost", code="POLLCOST")
    Question.objects.bulk_create(
        Question(event=event, text=f"Question {i} about the roadmap?", attendee=f"a{i}", state="processed")
        for i in range(questions)
    )
    client = Client(HTTP_HOST="localhost")
    assert client.get(f"/e/{event.code}/").status_code == 200  # the attendee identity, as the page gives it
    url = f"/api/events/{event.code}/questions"

    def timed(changed: bool) -> tuple[list[float], float, int]:
        etag, seconds, queries, status = None, [], 0, 0
        for _ in range(polls):
            if changed:
                live._bump(event.code)
            headers = {"HTTP_IF_NONE_MATCH": etag} if etag else {}
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, **headers)
                seconds.append(time.perf_counter() - started)
            queries += len(captured)
            status = response.status_code
            etag = response.get("ETag", etag)
        return seconds, queries / polls, status

    result = {"questions": questions, "polls": polls, "database": connection.vendor}
    for name in ("unchanged", "changed"):
        timed(name == "changed")  # warm up
        seconds, queries, status = timed(name == "changed")
        ms = sorted(s * 1000 for s in seconds)
        result[name] = {
            "status": status,
            "p50_ms": round(statistics.median(ms), 3),
            "p99_ms": round(ms[int(0.99 * len(ms))], 3),
            "queries_per_poll": queries,
            "bytes": len(client.get(url).content) if name == "changed" else 0,
        }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.poll_cost", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--polls", type=int, default=2000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.questions, args.polls)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
