"""What a page's poll costs the server: unchanged (a 304 from the cache) and changed (the full list).

    python -m benchmarks.poll_cost [--questions 200] [--polls 2000] [--room 100]

In one process, on a throw-away SQLite database (or DATABASE_URL), through Django's whole request
path (middleware, view, serialisation; no network): an event of ``--questions`` processed
questions, polled by one attendee as the page does. "unchanged" sends the last ETag back;
"changed" bumps the event's version before each poll, so every poll reads and serialises the list
(the worst case: one poll per version). "room" is a voting room: the version changes, then each of
``--room`` attendees (one in ten with a vote or a question of their own in the list) polls once
with its old ETag, so one poll reads the list and the others reuse the process's snapshot of it
(webapp/questions/listing.py). Prints one JSON line: median and p99 in milliseconds, and the
database queries per poll.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time


def measure(questions: int, polls: int, room_size: int = 100) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="poll-cost-"))
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # A room's attendees all come from this one address here.
    os.environ.setdefault("ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS", "100000")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection, reset_queries
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
            reset_queries()  # the log keeps 9,000 queries: a full one would count none
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url, **headers)
                seconds.append(time.perf_counter() - started)
            queries += len(captured)
            status = response.status_code
            etag = response.get("ETag", etag)
        return seconds, queries / polls, status

    def room(size: int) -> tuple[list[float], float, int]:
        """Each round: a change, then one poll by each attendee of the room (with its old ETag)."""
        clients = []
        for i in range(size):
            attendee = Client(HTTP_HOST="localhost")
            attendee.get(f"/e/{event.code}/")
            clients.append(attendee)
            if i % 10 == 0:  # some voted: their rows are theirs to mark
                assert attendee.post(f"/api/questions/{rows[i % len(rows)].pk}/vote").status_code == 200
        seconds, queries, status = [], 0, 0
        for _ in range(max(1, polls // size)):
            live._bump(event.code)
            for attendee in clients:
                reset_queries()
                with CaptureQueriesContext(connection) as captured:
                    started = time.perf_counter()
                    response = attendee.get(url)
                    seconds.append(time.perf_counter() - started)
                queries += len(captured)
                status = response.status_code
        return seconds, queries / len(seconds), status

    rows = list(Question.objects.filter(event=event))
    result = {"questions": questions, "polls": polls, "database": connection.vendor, "room_size": room_size}
    if room_size:
        room(room_size)  # warm up
        seconds, queries, status = room(room_size)
        ms = sorted(s * 1000 for s in seconds)
        result["room"] = {
            "status": status,
            "p50_ms": round(statistics.median(ms), 3),
            "mean_ms": round(statistics.fmean(ms), 3),
            "p99_ms": round(ms[int(0.99 * len(ms))], 3),
            "queries_per_poll": round(queries, 3),
        }
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
    parser.add_argument("--room", type=int, default=100, help="attendees polling each version (0: skip)")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.questions, args.polls, args.room)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
