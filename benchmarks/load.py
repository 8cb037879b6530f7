"""Load on the whole app (PostgreSQL, Redis, two Celery workers, the function host, gunicorn).

N simulated attendees do what the attendee page does (static/questions/attendee.js): open the event
page (it gives the attendee cookie), poll the question list every 1.5 s after the last poll settled,
ask the similar endpoint once and post a question every 30-60 s (then poll at once, as the page
does), and vote on a listed question every 3-8 s. One moderator page (signed in through
/accounts/login/) polls the flags, the queue and the list together every 1.5 s, and one presenter
page polls the list. Every client keeps one HTTP/1.1 keep-alive connection (the moderator three,
as its page's parallel fetches) and sends ``If-None-Match`` with the ETag of its last answer for
that URL, as a browser's fetch() revalidates; a 304 keeps the last list. All clients are asyncio
tasks in this process; the app runs in its own processes (benchmarks/stack.py).

Texts come from the event question pools (training/data/event_pairs/pools*.json): about
a third of the posts paraphrase an earlier one, as a real audience does, so the duplicate search
has work. Each level runs for a fixed time on its own event, the attendees joining over its first
seconds (the ramp; rates and request latencies are taken after it); then the backlog drains and the
figures come from the database: when each question was stored, processed and first flagged, and
the ``timings`` the processing stored (queue wait, embed, sentiment, event lock, index, database).

``run(quick)`` measures, ``section(data, figures_dir)`` renders markdown (python -m benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
import urllib.parse
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import machine
from benchmarks.stack import Stack
from benchmarks.summary import table

POOLS = Path(__file__).resolve().parent.parent / "training" / "data" / "event_pairs"
LEVELS = (100, 300, 1000)
QUIET_LEVEL = 1000  # then as many attendees who only read: nobody posts or votes, the event stays unchanged
FULL_SECONDS = 60.0
QUICK_LEVELS = (10, 50)
QUICK_QUIET_LEVEL = 50
QUICK_SECONDS = 8.0
QUICK_SCALE = 0.1  # quick mode compresses the pauses between posts and votes ten times (not the polls)
POLL_S = 1.5  # POLL_MS of static/questions/{attendee,moderate,present}.js
RAMP_S = 10.0  # the attendees join over this much of a level's start (at most a quarter of it)
REQUEST_TIMEOUT_S = 30.0
PARAPHRASE_SHARE = 0.35
DRAIN_TIMEOUT_S = 120.0
TIMING_KEYS = ("queue", "embed", "sentiment", "verify", "lock", "index", "db", "total")


# --- texts ------------------------------------------------------------------------------------
def clusters(seed: int = 0) -> list[list[str]]:
    """Every paraphrase cluster of the pools, shuffled: each cluster asks one question."""
    found = []
    for path in sorted(POOLS.glob("pools*.json")):
        for event in json.loads(path.read_text(encoding="utf-8"))["events"]:
            for topic in event["topics"]:
                found += [list(c) for c in topic["clusters"] if c]
    random.Random(seed).shuffle(found)
    return found


class Texts:
    """Draws the next question: a fresh cluster, or (PARAPHRASE_SHARE) another wording of one used."""

    def __init__(self, seed: int, paraphrase_share: float = PARAPHRASE_SHARE) -> None:
        self.random = random.Random(seed)
        self.fresh = clusters(seed)
        self.used: list[int] = []  # cluster numbers already asked
        self.unused_wordings: dict[int, list[str]] = {}
        self.share = paraphrase_share

    def next(self) -> tuple[int, str]:
        if self.used and self.random.random() < self.share:
            number = self.random.choice(self.used)
            wordings = self.unused_wordings[number]
            text = wordings.pop() if wordings else self.random.choice(self.fresh[number])
            return number, text
        number = len(self.used)
        self.used.append(number)
        wordings = list(self.fresh[number % len(self.fresh)])
        self.random.shuffle(wordings)
        text = wordings.pop()
        self.unused_wordings[number] = wordings
        return number, text


# --- a small HTTP/1.1 client: one keep-alive connection, cookies and ETags, as a browser tab -----
class Closed(ConnectionError):
    """The server closed the connection before answering."""


class Browser:
    def __init__(self, port: int, crowd: Crowd, cookies: dict[str, str] | None = None) -> None:
        self.port = port
        self.crowd = crowd
        self.cookies = {} if cookies is None else cookies  # shared by the connections of one page
        self.etags: dict[str, str] = {}  # URL -> ETag of its last 200
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reused = False  # the request under way went out on a connection that served one before

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, form: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if form is not None:
            data, kind = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
        else:
            data, kind = (json.dumps(body).encode() if body is not None else b""), "application/json"
        headers = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Accept: application/json"]
        if self.cookies:
            headers.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if method == "POST":
            headers += [f"Content-Type: {kind}", f"Content-Length: {len(data)}"]
            if "csrftoken" in self.cookies:
                headers.append(f"X-CSRFToken: {self.cookies['csrftoken']}")
        elif path in self.etags:
            headers.append(f"If-None-Match: {self.etags[path]}")
        raw = ("\r\n".join(headers) + "\r\n\r\n").encode() + data
        try:
            return await self._exchange(raw, method)
        except (Closed, ConnectionResetError, BrokenPipeError, asyncio.IncompleteReadError):
            if not self.reused:
                raise
            # The server closed a kept-alive connection (its keep-alive timeout): a browser sends again.
            self.close()
            return await self._exchange(raw, method)

    async def _exchange(self, raw: bytes, method: str) -> tuple[int, dict[str, str], bytes]:
        self.reused = self.writer is not None
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            self.crowd.connections += 1
        reader, writer = self.reader, self.writer
        assert reader is not None
        writer.write(raw)
        await writer.drain()
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self.close()
            raise Closed("closed before the status line") from exc
        self.reused = False  # an answer started: no second try from here
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
            elif name:
                headers[name] = value
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            payload = b""
        elif "content-length" in headers:
            payload = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size + 2))
            await reader.readuntil(b"\r\n")
            payload = b"".join(c[:-2] for c in chunks)
        else:
            payload = await reader.read()
            headers["connection"] = "close"
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, payload

    async def call(
        self, kind: str, method: str, path: str, body: dict[str, Any] | None = None, form: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        """One request, counted in the crowd under ``kind``; status 0 for a connection error or a timeout."""
        started = time.perf_counter()
        try:
            status, headers, payload = await asyncio.wait_for(self.request(method, path, body, form), REQUEST_TIMEOUT_S)
        except (TimeoutError, OSError, ValueError, IndexError, asyncio.IncompleteReadError) as exc:
            self.close()
            self.crowd.count(kind, "error", (time.perf_counter() - started) * 1000)
            if len(self.crowd.errors) < 20:
                self.crowd.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, b""
        self.crowd.count(kind, status, (time.perf_counter() - started) * 1000)
        if method == "GET" and status == 200 and "etag" in headers:
            self.etags[path] = headers["etag"]
        return status, payload


# --- the crowd --------------------------------------------------------------------------------
def ok(status: str) -> bool:
    """2xx, a 304 (the last answer still holds) and the sign-in's redirect are answers, not errors."""
    return status in ("302", "304") or status.startswith("2")


@dataclass
class Crowd:
    """What the clients did, as they saw it; ``steady`` counts only what ended after the ramp."""

    posted: dict[int, int] = field(default_factory=dict)  # question id -> cluster number
    statuses: Counter = field(default_factory=Counter)  # "post 201", "vote 200", "list 304", "post error"...
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    connections: int = 0
    steady_from: float = 0.0  # loop time the ramp ends
    steady: Counter = field(default_factory=Counter)
    steady_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def count(self, kind: str, status: int | str, ms: float) -> None:
        self.statuses[f"{kind} {status}"] += 1
        self.latency_ms[kind].append(ms)
        if asyncio.get_running_loop().time() >= self.steady_from:
            self.steady[f"{kind} {status}"] += 1
            self.steady_ms[kind].append(ms)


async def attendee(
    port: int,
    code: str,
    texts: Texts,
    crowd: Crowd,
    stop_at: float,
    scale: float,
    rng: random.Random,
    ramp_s: float,
    quiet: bool = False,
) -> None:
    """One attendee page; a ``quiet`` one only polls (it reads, never asks nor votes)."""
    browser = Browser(port, crowd)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.uniform(0, ramp_s))
    await browser.call("page", "GET", f"/e/{code}/")  # the csrftoken and attendee cookies, as a browser gets them
    now = loop.time()
    next_poll = now  # Live.poll calls at once, then POLL_S after each answer
    next_post = now + rng.uniform(0, 45) * scale if not quiet else float("inf")
    next_vote = now + rng.uniform(3, 8) * scale if not quiet else float("inf")
    listing = b""  # the last list answered with a 200; a 304 keeps it
    voted: set[int] = set()
    try:
        while True:
            wake = min(next_poll, next_post, next_vote)
            if wake >= stop_at:
                return
            await asyncio.sleep(max(0.0, wake - loop.time()))
            if wake == next_poll:
                status, payload = await browser.call("list", "GET", f"/api/events/{code}/questions?sort=votes")
                if status == 200:
                    listing = payload
                next_poll = loop.time() + POLL_S
            elif wake == next_post:
                number, text = texts.next()
                # The page asks for similar questions while the attendee types (one ask per post here).
                await browser.call("similar", "GET", f"/api/events/{code}/similar?q={urllib.parse.quote(text)}")
                status, payload = await browser.call("post", "POST", f"/api/events/{code}/questions", {"text": text})
                if status == 201:
                    crowd.posted[json.loads(payload)["id"]] = number
                    next_poll = loop.time()  # poller.now() after a post
                next_post = loop.time() + rng.uniform(30, 60) * scale
            else:
                listed = [q["id"] for q in json.loads(listing)["questions"]] if listing else []
                choices = [q for q in listed if q not in voted]
                if choices:
                    question = rng.choice(choices)
                    await browser.call("vote", "POST", f"/api/questions/{question}/vote")
                    voted.add(question)
                next_vote = loop.time() + rng.uniform(3, 8) * scale
    finally:
        browser.close()


async def moderator(port: int, code: str, username: str, password: str, crowd: Crowd, stop_at: float) -> None:
    """The moderator page: sign in, open the page, poll flags, queue and list together (Promise.all)."""
    cookies: dict[str, str] = {}
    tabs = [Browser(port, crowd, cookies) for _ in range(3)]
    loop = asyncio.get_running_loop()
    try:
        status, page = await tabs[0].call("login", "GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        form = {
            "username": username,
            "password": password,
            "csrfmiddlewaretoken": token.group(1).decode() if token else "",
        }
        status, _ = await tabs[0].call("login", "POST", "/accounts/login/", form=form)
        if status != 302 or "sessionid" not in cookies:
            crowd.errors.append(f"moderator: sign-in answered {status}")
            return
        await tabs[0].call("page", "GET", f"/e/{code}/moderate/")
        urls = (f"/api/events/{code}/flags", f"/api/events/{code}/queue", f"/api/events/{code}/questions?sort=votes")
        while loop.time() < stop_at:
            await asyncio.gather(*(tab.call("moderate", "GET", url) for tab, url in zip(tabs, urls)))
            await asyncio.sleep(POLL_S)
    finally:
        for tab in tabs:
            tab.close()


async def presenter(port: int, code: str, crowd: Crowd, stop_at: float) -> None:
    browser = Browser(port, crowd)
    loop = asyncio.get_running_loop()
    try:
        await browser.call("page", "GET", f"/e/{code}/present/")
        while loop.time() < stop_at:
            await browser.call("present", "GET", f"/api/events/{code}/questions?sort=votes")
            await asyncio.sleep(POLL_S)
    finally:
        browser.close()


async def crowd_run(
    port: int,
    code: str,
    attendees: int,
    seconds: float,
    scale: float,
    seed: int,
    moderator_login: tuple[str, str] | None = None,
    presenter_page: bool = False,
    quiet: bool = False,
) -> Crowd:
    """``attendees`` attendee pages (and a moderator and a presenter page if asked) for ``seconds``."""
    crowd = Crowd()
    texts = Texts(seed)
    loop = asyncio.get_running_loop()
    ramp_s = min(RAMP_S, seconds / 4)
    crowd.steady_from = loop.time() + ramp_s
    stop_at = loop.time() + seconds
    rng = random.Random(seed)
    pages = [
        attendee(port, code, texts, crowd, stop_at, scale, random.Random(rng.random()), ramp_s, quiet)
        for _ in range(attendees)
    ]
    if moderator_login:
        pages.append(moderator(port, code, *moderator_login, crowd, stop_at))
    if presenter_page:
        pages.append(presenter(port, code, crowd, stop_at))
    await asyncio.gather(*pages)
    return crowd


# --- what the database says -------------------------------------------------------------------
def questions(stack: Stack, code: str) -> list[dict[str, Any]]:
    with stack.db() as conn:
        rows = conn.execute(
            """
            SELECT q.id, q.state, q.attempts, q.created_at, q.processed_at, q.timings, q.vector,
                   (SELECT min(f.created_at) FROM questions_flag f WHERE f.question_id = q.id)
            FROM questions_question q JOIN events_event e ON e.id = q.event_id
            WHERE e.code = %s ORDER BY q.id
            """,
            [code],
        ).fetchall()
    keys = ("id", "state", "attempts", "created_at", "processed_at", "timings", "vector", "first_flag_at")
    return [dict(zip(keys, row)) for row in rows]


def flag_pairs(stack: Stack, code: str) -> set[frozenset[int]]:
    with stack.db() as conn:
        rows = conn.execute(
            """
            SELECT f.question_id, f.matched_id FROM questions_flag f
            JOIN questions_question q ON q.id = f.question_id JOIN events_event e ON e.id = q.event_id
            WHERE e.code = %s
            """,
            [code],
        ).fetchall()
    return {frozenset(row) for row in rows}


def backlog(stack: Stack, code: str) -> int:
    """Questions of the event not processed yet (pending or failed)."""
    with stack.db() as conn:
        return conn.execute(
            """SELECT count(*) FROM questions_question q JOIN events_event e ON e.id = q.event_id
               WHERE e.code = %s AND q.state <> 'processed'""",
            [code],
        ).fetchone()[0]


def drain(stack: Stack, code: str, timeout: float = DRAIN_TIMEOUT_S) -> float | None:
    """Seconds until every question of the event is processed; None if that takes over ``timeout``."""
    started = time.monotonic()
    while backlog(stack, code):
        if time.monotonic() - started > timeout:
            return None
        time.sleep(0.2)
    return round(time.monotonic() - started, 2)


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p99": None, "mean": None}
    array = np.asarray(values, dtype=float)
    return {
        "n": len(values),
        "p50": round(float(np.percentile(array, 50)), 1),
        "p99": round(float(np.percentile(array, 99)), 1),
        "mean": round(float(array.mean()), 1),
    }


def expected_flags(rows: list[dict[str, Any]], limit: int = 1, margin: float = 0.01) -> set[frozenset[int]]:
    """The flags the app should have raised, replayed from the stored vectors in processing order.

    Each question is compared with those processed before it (the per-event lock makes that the
    order of the searches); its best match at or above the related threshold is flagged, a duplicate
    or a related flag (webapp/questions/similarity.py::choose_flags: one flag at most; the verifier
    may add one below the threshold, which the replay cannot know, so those are not expected).
    Matches within ``margin`` of the threshold, or of the next best, are left out too: float
    rounding, or a tie between copies of one text, may put them on either side.
    """
    from embeddings.cards import DEFAULT_EMBEDDING_MODEL, load_card

    thresholds = load_card(DEFAULT_EMBEDDING_MODEL).thresholds
    done = sorted((r for r in rows if r["processed_at"] and r["vector"]), key=lambda r: r["processed_at"])
    pairs: set[frozenset[int]] = set()
    vectors = [np.frombuffer(bytes(r["vector"]), dtype="<f4") for r in done]
    for i in range(1, len(done)):
        similarities = np.stack(vectors[:i]) @ vectors[i]
        order = np.argsort(-similarities)
        cut = similarities[order[limit]] if len(order) > limit else -1.0
        pairs |= {
            frozenset((done[i]["id"], done[j]["id"]))
            for j in order[:limit]
            if similarities[j] >= thresholds.related + margin and similarities[j] > cut + margin
        }
    return pairs


def paraphrase_pairs(posted: dict[int, int]) -> set[frozenset[int]]:
    by_cluster: dict[int, list[int]] = defaultdict(list)
    for question_id, number in posted.items():
        by_cluster[number].append(question_id)
    return {frozenset((a, b)) for ids in by_cluster.values() for i, a in enumerate(ids) for b in ids[i + 1 :]}


def summarise(stack: Stack, code: str, crowd: Crowd, seconds: float, ramp_s: float = 0.0) -> dict[str, Any]:
    """The figures of one run, from the crowd's view (rates and latencies after the ramp) and the database's."""
    rows = questions(stack, code)
    processed = [r for r in rows if r["state"] == "processed"]
    to_processed = [(r["processed_at"] - r["created_at"]).total_seconds() * 1000 for r in processed]
    to_flag = [(r["first_flag_at"] - r["created_at"]).total_seconds() * 1000 for r in rows if r["first_flag_at"]]
    breakdown = {
        key: percentiles([r["timings"][key] for r in processed if r["timings"] and key in r["timings"]])
        for key in TIMING_KEYS
    }
    paraphrases = paraphrase_pairs(crowd.posted)
    flagged = flag_pairs(stack, code)
    replayed = expected_flags(rows)
    expected = replayed & paraphrases
    steady_s = max(seconds - ramp_s, 1e-9)
    steady = crowd.steady
    polls = {k: v for k, v in steady.items() if k.startswith("list ")}
    stored = {r["id"]: r["state"] for r in rows}
    return {
        "seconds": seconds,
        "ramp_s": ramp_s,
        "accepted": crowd.statuses["post 201"],
        "stored": len(rows),
        "processed": len(processed),
        "failed": sum(r["state"] == "failed" for r in rows),
        # Accepted (201) but not in the database, or in it and never processed.
        "lost_missing": sum(qid not in stored for qid in crowd.posted),
        "lost_unprocessed": sum(stored.get(qid, "processed") != "processed" for qid in crowd.posted),
        "posts_per_s": round(steady["post 201"] / steady_s, 3),
        "votes_per_s": round(steady["vote 200"] / steady_s, 3),
        "polls_per_s": round(sum(polls.values()) / steady_s, 2),
        "requests_per_s": round(sum(steady.values()) / steady_s, 2),
        "poll_304_share": round(polls.get("list 304", 0) / sum(polls.values()), 3) if polls else None,
        "connections": crowd.connections,
        "statuses": dict(sorted(crowd.statuses.items())),
        "http_errors": {k: v for k, v in sorted(crowd.statuses.items()) if not ok(k.rsplit(" ", 1)[1])},
        "client_errors": crowd.errors,
        "request_ms": {kind: percentiles(values) for kind, values in sorted(crowd.steady_ms.items())},
        "submit_to_processed_ms": percentiles(to_processed),
        "submit_to_flag_ms": percentiles(to_flag),
        "breakdown_ms": breakdown,
        "retried": sum(r["attempts"] > 1 for r in rows),
        "paraphrase_pairs": len(paraphrases),
        "paraphrase_pairs_flagged": len(paraphrases & flagged),
        "expected_paraphrase_flags": len(expected),
        "expected_flags_missed": len(expected - flagged),
        # Every flag the replay raises (related questions too, not only paraphrases).
        "replayed_flags": len(replayed),
        "replayed_flags_missed": len(replayed - flagged),
    }


def machine_busy_s() -> float:
    """CPU seconds every core of the machine spent busy so far (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def redis_commands(stack: Stack) -> int:
    return int(stack.redis().info("stats")["total_commands_processed"])


def database_connections(stack: Stack) -> int:
    """Connections open to the stack's database, this query's own left out (the pools keep theirs)."""
    with stack.db() as conn:
        return conn.execute("SELECT count(*) - 1 FROM pg_stat_activity WHERE datname = current_database()").fetchone()[
            0
        ]


def run_level(
    stack: Stack, attendees: int, seconds: float, scale: float, seed: int, quiet: bool = False
) -> dict[str, Any]:
    code = f"{'QUIET' if quiet else 'LOAD'}{attendees}"
    stack.create_events([code])
    login = (f"moderator{code}", stack.create_moderator(code, f"moderator{code}"))
    started = machine.now()
    redis_before = redis_commands(stack)
    busy_before = machine_busy_s()
    cpu_before, own_before, wall_before = stack.cpu_seconds(), time.process_time(), time.monotonic()
    crowd = asyncio.run(crowd_run(stack.web_port, code, attendees, seconds, scale, seed, login, True, quiet))
    wall = time.monotonic() - wall_before
    own = time.process_time() - own_before
    cpu_after = stack.cpu_seconds()
    busy = round((machine_busy_s() - busy_before) / wall, 2)
    redis_per_s = round((redis_commands(stack) - redis_before) / wall)
    connections = database_connections(stack)
    drained = drain(stack, code)
    cores = {k: round((cpu_after.get(k, 0) - cpu_before.get(k, 0)) / wall, 2) for k in sorted(cpu_after)}
    result = {
        "attendees": attendees,
        "quiet": quiet,
        "started": started,
        "drain_s": drained,
        # Cores in use on average over the level (CPU seconds / wall seconds); "load" is this process.
        # machine: every process on it (other users' too); the other keys are ours.
        "cpu_cores": {"machine": busy, "load": round(own / wall, 2), **cores},
        "redis_commands_per_s": redis_per_s,  # the broker and the shared cache (rate limits, live versions)
        "database_connections": connections,  # open at the level's end: what the pools grew to
        **summarise(stack, code, crowd, seconds, min(RAMP_S, seconds / 4)),
    }
    poll = result["request_ms"].get("list", {})
    print(
        f"  {attendees:>4} attendees{' (polling only)' if quiet else ''}: {result['requests_per_s']:.0f} req/s "
        f"({result['polls_per_s']:.0f} polls/s, "
        f"{fmt(result['poll_304_share'], 3)} of them 304), poll p50 {poll.get('p50')} p99 {poll.get('p99')} ms, "
        f"{result['posts_per_s']:.2f} posts/s, submit->flag p50 {result['submit_to_flag_ms']['p50']} "
        f"p99 {result['submit_to_flag_ms']['p99']} ms, lost {result['lost_missing']} + {result['lost_unprocessed']}, "
        f"errors {result['http_errors'] or 'none'}, cores {result['cpu_cores']}, redis {redis_per_s} commands/s, "
        f"{connections} database connections",
        flush=True,
    )
    return result


def run(quick: bool) -> dict[str, Any]:
    levels = QUICK_LEVELS if quick else LEVELS
    scale = QUICK_SCALE if quick else 1.0
    seconds = QUICK_SECONDS if quick else FULL_SECONDS
    # The production defaults except the posting limit, which quick mode's compressed pauses exceed.
    env = {"POSTS_PER_MINUTE": "600"} if quick else {}
    before = machine.snapshot()
    started = time.perf_counter()
    with Stack(env=env, database="asktwice_bench_load") as stack:
        start_s = round(time.perf_counter() - started, 1)
        results = [run_level(stack, n, seconds, scale, seed=n) for n in levels]
        quiet = QUICK_QUIET_LEVEL if quick else QUIET_LEVEL
        results.append(run_level(stack, quiet, seconds, scale, seed=quiet + 1, quiet=True))
        web = f"gunicorn, {stack.web_workers} workers x {stack.web_threads} threads (deploy/gunicorn.conf.py)"
    return {
        "started": before["at"],
        "machine": machine.machine(),
        "load_before": before,
        "load_after": machine.snapshot(),
        "stack_start_s": start_s,
        "setup": {
            "celery_workers": 2,
            "host_workers": 2,
            "web": web,
            "poll_s": POLL_S,
            "ramp_s": min(RAMP_S, seconds / 4),
            "attendee": f"polls the list every {POLL_S:g} s, posts every 30-60 s (after one similar request), "
            "votes every 3-8 s" + (f" (pauses between posts and votes x{scale})" if quick else ""),
            "paraphrase_share": PARAPHRASE_SHARE,
        },
        "levels": results,
    }


# --- the report -------------------------------------------------------------------------------
def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _p(stats: dict[str, Any] | None, digits: int = 0) -> str:
    stats = stats or {}
    return f"{fmt(stats.get('p50'), digits)} / {fmt(stats.get('p99'), digits)}"


def _who(level: dict[str, Any]) -> str:
    return f"{level['attendees']:,}" + (" reading only" if level.get("quiet") else "")


def section(data: dict[str, Any], figures_dir: Path) -> str:
    levels = data["levels"]
    setup = data["setup"]
    lines = [
        "## Load on the whole app: the pages' polling",
        "",
        f"Two Celery workers (solo pool), the function host with two workers, PostgreSQL, a private "
        f"redis-server and the web app under {setup['web']}, all on this machine; the clients are asyncio "
        f"tasks in one more process on loopback (benchmarks/load.py). Each attendee does what the attendee "
        f"page does: opens `/e/<code>/` (the attendee cookie), {setup['attendee']}. One moderator page (signed "
        f"in) polls the flags, the queue and the list together, one presenter page the list, both every "
        f"{setup['poll_s']:g} s. Every client keeps its connection alive and sends `If-None-Match` with its "
        f"last ETag per URL, as fetch() revalidates; a 304 counts as an answer. About "
        f"{int(setup['paraphrase_share'] * 100)}% of the posts paraphrase an earlier one. The attendees join "
        f"over the first {setup['ramp_s']:g} s; rates and request latencies are from the rest of the level. "
        "HTTP errors: any answer but 2xx, 304 (and the sign-in's 302), plus connection errors and timeouts "
        f"({REQUEST_TIMEOUT_S:g} s). Lost: posted with a 201 but not in the database, or never processed "
        "once the backlog drained. Latencies after submit come from the stored timestamps (submit = "
        "the question's `created_at`). Reading only: as many attendees who only poll (nobody posts or "
        "votes, so the list stays unchanged and every poll after the first may be a 304), the room before "
        "anyone asks.",
        "",
        _levels_table(levels, setup),
        "",
        "polls/s (asked): what the pages would send if every answer were instant (attendees / "
        f"{setup['poll_s']:g} s); a page polls again {setup['poll_s']:g} s after the last answer, so slower "
        "answers mean fewer polls.",
        "",
        "Requests as the clients saw them, p50 / p99 ms (moderate: each of the moderator page's three polls):",
        "",
        _requests_table(levels),
        "",
        "Where the machine's two cores went over each level (CPU seconds / wall seconds; machine: every "
        "process on it, other users' included; load: the clients' own process; web: gunicorn, master and "
        "workers; postgres: every PostgreSQL process on the machine), Redis commands a second (the broker "
        "and the shared cache: rate limits, live versions) and the database connections open at the "
        "level's end (what the pools grew to):",
        "",
        _cores_table(levels),
        "",
        "Where the processing time goes, p50 / p99 in ms per processed question (the `timings` each "
        "processing run stores: queue = last send to task start, verify = the verifier's reading of the best "
        "match, outside the lock, lock = waiting for the event's row, "
        "index = FAISS catch-up and search, db = the other queries):",
        "",
        _timings_table(levels),
        "",
        "Duplicate flags:",
        "",
        _flags_table(levels),
    ]
    plot = _plot(levels, setup["poll_s"], figures_dir)
    if plot:
        lines += ["", f"![poll and submit-to-flag latency, and polls per second, by attendees]({plot})"]
    return "\n".join(lines)


def _levels_table(levels: list[dict[str, Any]], setup: dict[str, Any]) -> str:
    return table(
        [
            "attendees",
            "s",
            "req/s",
            "polls/s (asked)",
            "304 share",
            "poll p50 / p99 ms",
            "HTTP errors",
            "posts/s",
            "submit→flag p50 / p99 ms",
            "lost",
            "backlog drained after s",
        ],
        [
            [
                _who(r),
                fmt(r["seconds"]),
                fmt(r["requests_per_s"], 1),
                f"{fmt(r['polls_per_s'], 1)} ({r['attendees'] / setup['poll_s']:,.0f})",
                "-" if r["poll_304_share"] is None else f"{r['poll_304_share']:.1%}",
                _p(r["request_ms"].get("list")),
                ", ".join(f"{k}: {v}" for k, v in r["http_errors"].items()) or "none",
                fmt(r["posts_per_s"], 2),
                _p(r["submit_to_flag_ms"]),
                r["lost_missing"] + r["lost_unprocessed"],
                fmt(r["drain_s"], 1),
            ]
            for r in levels
        ],
    )


def _requests_table(levels: list[dict[str, Any]]) -> str:
    return table(
        ["attendees", "list", "vote", "similar", "post", "moderate", "present", "page"],
        [
            [_who(r)]
            + [
                _p(r["request_ms"].get(k), 1)
                for k in ("list", "vote", "similar", "post", "moderate", "present", "page")
            ]
            for r in levels
        ],
    )


def _cores_table(levels: list[dict[str, Any]]) -> str:
    return table(
        ["attendees", "cores", "Redis commands/s", "database connections"],
        [
            [
                _who(r),
                ", ".join(f"{k} {v:g}" for k, v in r.get("cpu_cores", {}).items()),
                fmt(r.get("redis_commands_per_s")),
                fmt(r.get("database_connections")),
            ]
            for r in levels
        ],
    )


def _timings_table(levels: list[dict[str, Any]]) -> str:
    return table(
        ["attendees", "questions", *TIMING_KEYS],
        [
            [_who(r), f"{r['processed']:,}"] + [_p(r["breakdown_ms"].get(k), 1) for k in TIMING_KEYS]
            for r in levels
            if r["processed"]
        ],
    )


def _flags_table(levels: list[dict[str, Any]]) -> str:
    return table(
        [
            "attendees",
            "submit→processed p50 / p99 ms",
            "paraphrase pairs posted",
            "flagged",
            "expected by replay, missed",
        ],
        [
            [
                _who(r),
                _p(r["submit_to_processed_ms"]),
                r["paraphrase_pairs"],
                r["paraphrase_pairs_flagged"],
                r["expected_flags_missed"],
            ]
            for r in levels
            if not r.get("quiet")
        ],
    )


def _plot(levels: list[dict[str, Any]], poll_s: float, figures_dir: Path) -> str | None:
    try:
        from benchmarks import plots
    except ImportError:  # matplotlib is optional: tables only
        return None
    fig, (left, right) = plots.figure(columns=2)
    quiet = [r for r in levels if r.get("quiet")]
    levels = [r for r in levels if not r.get("quiet")]
    xs = [r["attendees"] for r in levels]

    def nan(values: list[Any]) -> list[float]:
        return [float("nan") if v is None else v for v in values]

    series = (
        ([r["request_ms"].get("list", {}) for r in levels], "poll", 0),
        ([r["submit_to_flag_ms"] for r in levels], "submit→flag", 1),
    )
    for stats, label, color in series:
        left.plot(xs, nan([s.get("p50") for s in stats]), "o-", color=plots.COLORS[color], label=f"{label} p50")
        left.plot(xs, nan([s.get("p99") for s in stats]), "o--", color=plots.COLORS[color], label=f"{label} p99")
    for r in quiet:
        poll = r["request_ms"].get("list", {})
        left.plot([r["attendees"]] * 2, nan([poll.get("p50"), poll.get("p99")]), "x", color=plots.COLORS[0])
    left.plot([], [], "x", color=plots.COLORS[0], label="poll p50, p99, reading only")
    left.set(xscale="log", yscale="log", xlabel="attendees", ylabel="ms", title="Latency")
    left.legend()
    right.plot(xs, [x / poll_s for x in xs], "o--", color=plots.COLORS[6], label="polls/s asked")
    right.plot(xs, [r["polls_per_s"] for r in levels], "o-", color=plots.COLORS[0], label="polls/s answered")
    right.plot(xs, [r["requests_per_s"] for r in levels], "o-", color=plots.COLORS[2], label="requests/s")
    for r in quiet:
        right.plot([r["attendees"]], [r["polls_per_s"]], "x", color=plots.COLORS[0])
    if quiet:
        right.plot([], [], "x", color=plots.COLORS[0], label="polls/s, reading only")
    right.set(xscale="log", yscale="log", xlabel="attendees", ylabel="per second", title="Throughput")
    for ax in (left, right):
        plots.plain_log(ax, "x")
        plots.plain_log(ax, "y")
    right.legend()
    return plots.save(fig, figures_dir, "load.png")
