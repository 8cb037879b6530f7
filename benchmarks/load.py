"""Issue 6 item 7: load on the whole app (PostgreSQL, Redis, two Celery workers, the function host).

N simulated attendees (one asyncio task each, standard library HTTP over loopback, in this process;
the app runs in its own processes, benchmarks/stack.py) open the event page, post a question every
30-60 s, list the questions every 10-15 s and vote on one of them every 3-8 s. Texts come from the
event question pools (embeddings/training/data/event_pairs/pools*.json): about a third of the posts
paraphrase an earlier one, as a real audience does, so the duplicate search has work. Each level
runs for a fixed time on its own event; then the backlog drains and the figures come from the
database: when each question was stored, processed and first flagged, and the ``timings`` the
processing stored (queue wait, embed, sentiment, event lock, index, database).

``run(quick)`` measures, ``section(data, figures_dir)`` renders markdown (python -m benchmarks).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import machine
from benchmarks.stack import Stack
from benchmarks.summary import table

POOLS = Path(__file__).resolve().parent.parent / "embeddings" / "training" / "data" / "event_pairs"
LEVELS = (1, 10, 50, 100, 200)
# Seconds per level in full mode: one attendee posts so rarely that a shorter run says as much.
FULL_SECONDS = {1: 30.0, 10: 45.0}
FULL_DEFAULT_SECONDS = 60.0
QUICK_LEVELS = (1, 10)
QUICK_SECONDS = 6.0
QUICK_SCALE = 0.1  # quick mode compresses the attendees' pauses ten times
PARAPHRASE_SHARE = 0.35
DRAIN_TIMEOUT_S = 120.0
TIMING_KEYS = ("queue", "embed", "sentiment", "lock", "index", "db", "total")


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


# --- a tiny HTTP client (stdlib, one connection per request, like a browser's fetch on loopback) --
class Browser:
    def __init__(self, port: int) -> None:
        self.port = port
        self.cookies: dict[str, str] = {}

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else b""
        headers = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "Connection: close"]
        if self.cookies:
            headers.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if method == "POST":
            headers += ["Content-Type: application/json", f"Content-Length: {len(data)}"]
            if "csrftoken" in self.cookies:
                headers.append(f"X-CSRFToken: {self.cookies['csrftoken']}")
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(("\r\n".join(headers) + "\r\n\r\n").encode() + data)
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head, _, payload = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "set-cookie":
                key, _, rest = value.strip().partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        return status, payload


# --- the crowd --------------------------------------------------------------------------------
@dataclass
class Crowd:
    """What the attendees did, as they saw it."""

    posted: dict[int, int] = field(default_factory=dict)  # question id -> cluster number
    statuses: Counter = field(default_factory=Counter)  # "post 201", "vote 200", "list 200", "post error"...
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)

    def count(self, kind: str, status: int | str, ms: float) -> None:
        self.statuses[f"{kind} {status}"] += 1
        self.latency_ms[kind].append(ms)


async def attendee(
    port: int, code: str, texts: Texts, crowd: Crowd, stop_at: float, scale: float, rng: random.Random
) -> None:
    browser = Browser(port)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.uniform(0, min(5.0, (stop_at - loop.time()) / 4)))

    async def call(kind: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        started = time.perf_counter()
        try:
            status, payload = await asyncio.wait_for(browser.request(method, path, body), 30)
        except (TimeoutError, OSError, ValueError, IndexError) as exc:
            crowd.count(kind, "error", (time.perf_counter() - started) * 1000)
            if len(crowd.errors) < 20:
                crowd.errors.append(f"{kind}: {type(exc).__name__}: {exc}")
            return 0, b""
        crowd.count(kind, status, (time.perf_counter() - started) * 1000)
        return status, payload

    await call("page", "GET", f"/e/{code}/")  # the csrftoken and attendee cookies, as a browser gets them
    now = loop.time()
    next_post = now + rng.uniform(0, 45) * scale
    next_list = now + rng.uniform(0, 10) * scale
    next_vote = now + rng.uniform(3, 8) * scale
    listed: list[int] = []
    voted: set[int] = set()
    while True:
        wake = min(next_post, next_list, next_vote)
        if wake >= stop_at:
            return
        await asyncio.sleep(max(0.0, wake - loop.time()))
        if wake == next_post:
            number, text = texts.next()
            status, payload = await call("post", "POST", f"/api/events/{code}/questions", {"text": text})
            if status == 201:
                crowd.posted[json.loads(payload)["id"]] = number
            next_post = loop.time() + rng.uniform(30, 60) * scale
        elif wake == next_list:
            status, payload = await call("list", "GET", f"/api/events/{code}/questions")
            if status == 200:
                listed = [q["id"] for q in json.loads(payload)["questions"]]
            next_list = loop.time() + rng.uniform(10, 15) * scale
        else:
            choices = [q for q in listed if q not in voted]
            if choices:
                question = rng.choice(choices)
                status, _ = await call("vote", "POST", f"/api/questions/{question}/vote")
                voted.add(question)
            next_vote = loop.time() + rng.uniform(3, 8) * scale


async def crowd_run(port: int, code: str, attendees: int, seconds: float, scale: float, seed: int) -> Crowd:
    crowd = Crowd()
    texts = Texts(seed)
    stop_at = asyncio.get_running_loop().time() + seconds
    rng = random.Random(seed)
    await asyncio.gather(
        *(attendee(port, code, texts, crowd, stop_at, scale, random.Random(rng.random())) for _ in range(attendees))
    )
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


def expected_flags(rows: list[dict[str, Any]], limit: int = 3, margin: float = 0.01) -> set[frozenset[int]]:
    """The flags the app should have raised, replayed from the stored vectors in processing order.

    Each question is compared with those processed before it (the per-event lock makes that the
    order of the searches); its best ``limit`` matches above the related threshold are flagged, as
    webapp/questions/processing.py does. Matches within ``margin`` of the threshold, or of the best
    match left out by ``limit``, are left out too: float rounding, or a tie between copies of one
    text, may put them on either side.
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


def summarise(stack: Stack, code: str, crowd: Crowd, seconds: float) -> dict[str, Any]:
    """The figures of one run, from the crowd's view and the database's."""
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
    accepted = crowd.statuses["post 201"]
    votes = crowd.statuses["vote 200"]
    return {
        "seconds": seconds,
        "accepted": accepted,
        "stored": len(rows),
        "processed": len(processed),
        "failed": sum(r["state"] == "failed" for r in rows),
        "posts_per_s": round(accepted / seconds, 3),
        "votes_per_s": round(votes / seconds, 3),
        "requests_per_s": round(sum(crowd.statuses.values()) / seconds, 2),
        "statuses": dict(sorted(crowd.statuses.items())),
        "http_errors": {k: v for k, v in sorted(crowd.statuses.items()) if not k.endswith((" 200", " 201"))},
        "client_errors": crowd.errors,
        "request_ms": {kind: percentiles(values) for kind, values in sorted(crowd.latency_ms.items())},
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


def run_level(stack: Stack, attendees: int, seconds: float, scale: float, seed: int) -> dict[str, Any]:
    code = f"LOAD{attendees}"
    stack.create_events([code])
    started = machine.now()
    crowd = asyncio.run(crowd_run(stack.web_port, code, attendees, seconds, scale, seed))
    drained = drain(stack, code)
    result = {"attendees": attendees, "started": started, "drain_s": drained, **summarise(stack, code, crowd, seconds)}
    print(
        f"  {attendees:>3} attendees: {result['posts_per_s']:.2f} posts/s, {result['votes_per_s']:.2f} votes/s, "
        f"submit->processed p50 {result['submit_to_processed_ms']['p50']} ms "
        f"p99 {result['submit_to_processed_ms']['p99']} ms, errors {result['http_errors'] or 'none'}",
        flush=True,
    )
    return result


def run(quick: bool) -> dict[str, Any]:
    levels = QUICK_LEVELS if quick else LEVELS
    scale = QUICK_SCALE if quick else 1.0
    # The production defaults except the posting limit, which quick mode's compressed pauses exceed.
    env = {"POSTS_PER_MINUTE": "600"} if quick else {}
    before = machine.snapshot()
    started = time.perf_counter()
    with Stack(env=env) as stack:
        start_s = round(time.perf_counter() - started, 1)
        results = [
            run_level(stack, n, QUICK_SECONDS if quick else FULL_SECONDS.get(n, FULL_DEFAULT_SECONDS), scale, seed=n)
            for n in levels
        ]
    return {
        "started": before["at"],
        "machine": machine.machine(),
        "load_before": before,
        "load_after": machine.snapshot(),
        "stack_start_s": start_s,
        "setup": {
            "celery_workers": 2,
            "host_workers": 2,
            "web": "runserver --noreload (threaded), PostgreSQL, private redis-server",
            "attendee": "posts every 30-60 s, lists every 10-15 s, votes every 3-8 s"
            + (f" (pauses x{scale})" if quick else ""),
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


def section(data: dict[str, Any], figures_dir: Path) -> str:
    levels = data["levels"]
    lines = [
        "## Load on the whole app (issue 6, item 7)",
        "",
        f"Two Celery workers (solo pool), the function host with two workers, PostgreSQL, a private "
        f"redis-server and `runserver`, all on this machine; the attendees are asyncio tasks in a second "
        f"process on loopback. Attendee: {data['setup']['attendee']}; about "
        f"{int(data['setup']['paraphrase_share'] * 100)}% of the posts paraphrase an earlier one. "
        "Latencies from the stored timestamps (submit = the question's `created_at`); the breakdown is "
        "the `timings` each processing run stores (queue = last send to task start, lock = waiting for the "
        "event's row, index = FAISS catch-up and search, db = the other queries).",
        "",
        table(
            [
                "attendees",
                "s",
                "posts/s",
                "votes/s",
                "req/s",
                "HTTP errors",
                "submit→processed p50 / p99 ms",
                "submit→flag p50 / p99 ms",
                "backlog drained after s",
            ],
            [
                [
                    r["attendees"],
                    fmt(r["seconds"]),
                    fmt(r["posts_per_s"], 2),
                    fmt(r["votes_per_s"], 2),
                    fmt(r["requests_per_s"], 1),
                    ", ".join(f"{k}: {v}" for k, v in r["http_errors"].items()) or "none",
                    f"{fmt(r['submit_to_processed_ms']['p50'])} / {fmt(r['submit_to_processed_ms']['p99'])}",
                    f"{fmt(r['submit_to_flag_ms']['p50'])} / {fmt(r['submit_to_flag_ms']['p99'])}",
                    fmt(r["drain_s"], 1),
                ]
                for r in levels
            ],
        ),
        "",
        "Where the time goes, p50 / p99 in ms per processed question:",
        "",
        table(
            ["attendees", "questions", *TIMING_KEYS],
            [
                [r["attendees"], r["processed"]]
                + [
                    f"{fmt(r['breakdown_ms'][k]['p50'], 1)} / {fmt(r['breakdown_ms'][k]['p99'], 1)}"
                    for k in TIMING_KEYS
                ]
                for r in levels
            ],
        ),
        "",
        "Requests as the attendees saw them (p50 / p99 ms) and the duplicate flags:",
        "",
        table(
            ["attendees", "post", "vote", "list", "paraphrase pairs posted", "flagged", "expected by replay, missed"],
            [
                [r["attendees"]]
                + [
                    f"{fmt(r['request_ms'].get(k, {}).get('p50'), 1)} / {fmt(r['request_ms'].get(k, {}).get('p99'), 1)}"
                    for k in ("post", "vote", "list")
                ]
                + [r["paraphrase_pairs"], r["paraphrase_pairs_flagged"], r["expected_flags_missed"]]
                for r in levels
            ],
        ),
    ]
    plot = _plot(levels, figures_dir)
    if plot:
        lines += ["", f"![submit to processed and posts per second by attendees]({plot})"]
    return "\n".join(lines)


def _plot(levels: list[dict[str, Any]], figures_dir: Path) -> str | None:
    try:
        from benchmarks import plots
    except ImportError:  # matplotlib is optional: tables only
        return None
    fig, (left, right) = plots.figure(columns=2)
    xs = [r["attendees"] for r in levels]

    def nan(values: list[Any]) -> list[float]:
        return [float("nan") if v is None else v for v in values]

    for key, label, color in (("submit_to_processed_ms", "processed", 0), ("submit_to_flag_ms", "flagged", 1)):
        left.plot(xs, nan([r[key]["p50"] for r in levels]), "o-", color=plots.COLORS[color], label=f"{label} p50")
        left.plot(xs, nan([r[key]["p99"] for r in levels]), "o--", color=plots.COLORS[color], label=f"{label} p99")
    left.set(xscale="log", yscale="log", xlabel="attendees", ylabel="ms after submit", title="Latency")
    left.legend()
    right.plot(xs, [r["posts_per_s"] for r in levels], "o-", color=plots.COLORS[2], label="posts/s")
    right.plot(xs, [r["votes_per_s"] for r in levels], "o-", color=plots.COLORS[3], label="votes/s")
    right.set(xscale="log", xlabel="attendees", ylabel="per second", title="Throughput")
    right.legend()
    return plots.save(fig, figures_dir, "load.png")
