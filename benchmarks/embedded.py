"""The embedded default (`make run`: runserver, eager tasks, in-process functions) under a room's load.

    python -m benchmarks.embedded [--database sqlite|postgresql] [--posts 200] [--attendees 50]

Serves the app as `make run` does, in its own process on a fresh database (a SQLite file, or a new
PostgreSQL database dropped afterwards), and posts to it over HTTP as attendees' browsers do:
first a burst of parallel posts (every answer, the POST's latency, the time until every question is
processed), then posts while the function never answers (INFERENCE_BACKEND=http to a socket that
accepts and stays silent). Prints one JSON line; docs/benchmarks/embedded.json keeps the last run.
tests/test_embedded_load.py asserts the same behaviour with these pieces.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES = os.environ.get("EMBEDDED_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
CODE = "ROOM42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """``manage.py runserver`` as `make run` starts it, with an event to post to."""

    def __init__(self, tmp: Path, database_url: str, create: bool = True, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "VAR_DIR": str(tmp),
            "REDIS_URL": "",
            "INFERENCE_BACKEND": "local",
            # One address here stands for a room behind one NAT: the per-attendee limit still holds.
            "POSTS_PER_MINUTE_PER_ADDRESS": "100000",
            "ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS": "100000",
            "LOG_LEVEL": "WARNING",
            **env,
        }
        if create:  # a second server on the same database skips this
            self.manage("migrate", "--noinput")
            self.manage("create_event", "Load test", "--code", CODE)
        self.log = open(tmp / f"server-{self.port}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2).read()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert self.process.poll() is None, Path(self.log.name).read_text()
                assert time.monotonic() < deadline, "runserver did not start"
                time.sleep(0.2)

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        return out.stdout

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class Attendee:
    """A browser: opens the event page (its cookies), then calls the API with the CSRF token."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.opener.open(f"{served.url}/e/{CODE}/", timeout=30).read()

    def csrf(self) -> str:
        return next(c.value for c in self.jar if c.name == "csrftoken")

    def post(self, text: str) -> tuple[int, float, dict]:
        request = urllib.request.Request(
            f"{self.served.url}/api/events/{CODE}/questions",
            data=json.dumps({"text": text}).encode(),
            headers={
                "Content-Type": "application/json",
                "X-CSRFToken": self.csrf(),
                "Referer": f"{self.served.url}/e/{CODE}/",
            },
        )
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=60) as response:
                status, body = response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            status, body = exc.code, {"error": exc.read().decode(errors="replace")}
        return status, time.perf_counter() - started, body

    def questions(self) -> list[dict]:
        with self.opener.open(f"{self.served.url}/api/events/{CODE}/questions?sort=time", timeout=30) as response:
            return json.loads(response.read())["questions"]


class Hanging:
    """A function that accepts the connection and never answers."""

    def __init__(self) -> None:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(512)
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"

    def close(self) -> None:
        self.socket.close()


TOPICS = ["the slides", "the recording", "the roadmap", "the budget", "hiring", "the office", "on-call", "pricing"]


def question_text(i: int) -> str:
    return f"Question {i}: what is the plan for {TOPICS[i % len(TOPICS)]} in quarter {i % 4 + 1} of year {2020 + i}?"


class NoPostgres(Exception):
    pass


def create_postgres() -> str:
    import psycopg

    name = f"asktwice_embedded_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        raise NoPostgres(f"PostgreSQL not reachable at {POSTGRES}: {exc}") from None
    return name


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{POSTGRES}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def quantiles(seconds: list[float]) -> dict[str, float]:
    ms = sorted(s * 1000 for s in seconds)
    return {
        "p50_ms": round(statistics.median(ms), 1),
        "p99_ms": round(ms[min(len(ms) - 1, int(0.99 * len(ms)))], 1),
        "max_ms": round(ms[-1], 1),
    }


def burst(served: Served, posts: int, attendees: int, settle_s: float = 30.0) -> dict:
    """``posts`` parallel posts from ``attendees`` attendees; then wait for all to be processed."""
    people = [Attendee(served) for _ in range(attendees)]
    started = time.perf_counter()
    with ThreadPoolExecutor(posts) as pool:
        results = list(pool.map(lambda i: people[i % attendees].post(question_text(i)), range(posts)))
    posted_s = time.perf_counter() - started
    deadline = time.monotonic() + settle_s
    while True:
        states = [q["state"] for q in people[0].questions()]
        done = states.count("processed")
        if done == posts or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    return {
        "posts": posts,
        "attendees": attendees,
        "status_counts": {str(s): [r[0] for r in results].count(s) for s in sorted({r[0] for r in results})},
        "post": quantiles([r[1] for r in results]),
        "all_posted_s": round(posted_s, 2),
        "all_processed_s": round(time.perf_counter() - started, 2) if done == posts else None,
        "processed": done,
        "left_pending": states.count("pending"),
        "failed": states.count("failed"),
    }


def hanging_posts(served: Served, posts: int = 20, attendees: int = 5) -> dict:
    people = [Attendee(served) for _ in range(attendees)]
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: people[i % attendees].post(question_text(i)), range(posts)))
    started = time.perf_counter()
    listed = len(people[0].questions())
    return {
        "posts": posts,
        "status_counts": {str(s): [r[0] for r in results].count(s) for s in sorted({r[0] for r in results})},
        "post": quantiles([r[1] for r in results]),
        "states": sorted({r[2].get("state", "?") for r in results}),
        "listed": listed,
        "list_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def run(database: str, posts: int, attendees: int) -> dict:
    result: dict = {"database": database, "server": "manage.py runserver (make run)", "functions": "in-process"}
    for part in ("burst", "hanging"):
        with tempfile.TemporaryDirectory() as tmp:
            name = create_postgres() if database == "postgresql" else None
            url = f"{POSTGRES}/{name}" if name else f"sqlite:///{Path(tmp) / 'db.sqlite3'}"
            hanging = Hanging() if part == "hanging" else None
            env = (
                {"INFERENCE_BACKEND": "http", "INFERENCE_URL": hanging.url, "INFERENCE_TIMEOUT_S": "10"}
                if hanging
                else {}
            )
            served = Served(Path(tmp), url, **env)
            try:
                result[part] = burst(served, posts, attendees) if part == "burst" else hanging_posts(served)
            finally:
                served.stop()
                if hanging:
                    hanging.close()
                if name:
                    drop_postgres(name)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.embedded", description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--attendees", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "docs" / "benchmarks" / "embedded.json"))
    args = parser.parse_args(argv)
    databases = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    runs = [run(db, args.posts, args.attendees) for db in databases]
    out = {
        "command": "python -m benchmarks.embedded " + " ".join(argv if argv is not None else sys.argv[1:]),
        "runs": runs,
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
