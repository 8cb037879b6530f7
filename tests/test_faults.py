"""Nothing lost: a killed worker, a restarted or absent broker, slow functions (issue 6, item 9).

Real components: a private redis-server (restarted at will; the shared one on 6379 is left alone),
Celery workers as subprocesses (killed with SIGKILL in the middle of a task), and the real function
handlers served over HTTP from this process, where a test can hold a call or slow it down. The
subprocess workers share the test database, so those tests need PostgreSQL (``make test`` runs this
file again with DATABASE_URL); the sweeper's own tests run on SQLite too.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from webapp.celery import app
from webapp.events.models import Event
from webapp.questions import lifecycle, recovery
from webapp.questions.models import Question

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = ("redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
CELERY_WORKER = (
    *(sys.executable, "-m", "celery", "-A", "webapp", "worker", "--pool=solo"),
    *("--loglevel=INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
)
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]
needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="workers in other processes need the test database on PostgreSQL"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class PrivateRedis:
    """A redis-server of our own that keeps nothing on disk, as in production here."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*REDIS_SERVER, "--port", str(self.port), "--dir", str(self.tmp)],
            stdout=subprocess.DEVNULL,
        )
        wait_until(self.ping, 10, "redis-server")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def ping(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.ConnectionError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)

    def queued(self) -> int:
        return self.client().llen("celery")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    app.conf.update(broker_url=server.url, task_always_eager=False)
    app._pool = None  # connections and producers of the previous (eager) configuration
    app.amqp._producer_pool = None
    yield server
    app.conf.update(broker_url="memory://", task_always_eager=True)
    app._pool = None
    app.amqp._producer_pool = None
    server.stop()


class FunctionServer(ThreadingHTTPServer):
    """The real handlers over HTTP (the function host's plain routes); calls can be held or slowed."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FunctionHandler)
        self.open = threading.Event()
        self.open.set()
        self.entered = threading.Event()  # a call arrived
        self.delay_s = 0.0
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class FunctionHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FunctionServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        from embeddings import handlers

        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.entered.set()
        self.server.open.wait(60)
        time.sleep(self.server.delay_s)
        body = json.dumps(handlers.FUNCTIONS[self.path.rsplit("/", 1)[-1]](event, None)).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (timed out, or was killed): nobody to answer


@pytest.fixture
def functions() -> Iterator[FunctionServer]:
    from embeddings import handlers  # noqa: F401 (load the models before a worker waits on them)

    server = FunctionServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server
    server.open.set()
    server.shutdown()
    server.server_close()


class Workers:
    """Celery workers as subprocesses on the test database, as deploy/stack.sh runs them."""

    def __init__(self, broker: PrivateRedis, functions: FunctionServer, logs: Path) -> None:
        db = connections["default"].settings_dict
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "REDIS_URL": broker.url,
            "INFERENCE_BACKEND": "http",
            "INFERENCE_URL": functions.url,
            "INFERENCE_TIMEOUT_S": "10",
            "QUESTION_SWEEP_INTERVAL_S": "0",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        self.logs = logs
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, **env: str) -> subprocess.Popen:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*CELERY_WORKER, "-n", f"{name}@test"],
                cwd=ROOT,
                env={**self.env, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        wait_until(lambda: b" ready." in log.read_bytes() or process.poll() is not None, 60, f"worker {name}")
        assert process.poll() is None, log.read_text()
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@pytest.fixture
def workers(broker: PrivateRedis, functions: FunctionServer, tmp_path: Path) -> Iterator[Workers]:
    started = Workers(broker, functions, tmp_path)
    yield started
    started.stop_all()  # before the test database is flushed


# A worker that sweeps every second and sends again what waited two seconds since its last send.
SWEEPER = {"QUESTION_SWEEP_INTERVAL_S": "1", "QUESTION_RESEND_AFTER_S": "2"}


def ask(text: str, client: Client | None = None) -> int:
    if client is None:
        client = Client()
        client.get("/e/LIVE/")  # the attendee identity the event page gives
    response = client.post("/api/events/LIVE/questions", json.dumps({"text": text}), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()["id"]


def state(question_id: int) -> str:
    return Question.objects.get(pk=question_id).state


@needs_postgres
def test_worker_killed_mid_task_leaves_the_question_to_another_worker_sweeper(broker, functions, workers):
    Event.create("Live", code="LIVE")
    functions.open.clear()  # the first call is held: the worker stays inside its task
    first = workers.start("first")
    qid = ask("Will the slides be shared after the talk?")
    assert functions.entered.wait(30), "the worker never called the functions"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)
    # The task's message is stranded in Redis's unacked set until the visibility timeout (10 min).
    assert broker.queued() == 0 and broker.client().hlen("unacked") == 1
    question = Question.objects.get(pk=qid)
    assert (question.state, question.attempts) == ("pending", 1)

    functions.open.set()
    workers.start("second", **SWEEPER)
    wait_until(lambda: state(qid) == "processed", 30, "the question to be processed")
    question = Question.objects.get(pk=qid)
    assert question.attempts == 2 and question.sentiment_label
    assert set(question.timings) >= {"queue", "embed", "sentiment", "index", "db", "total"}
    assert "'resent': 1" in workers.log("second")


@needs_postgres
def test_question_queued_when_redis_restarts_is_processed_in_the_end(broker, functions, workers):
    Event.create("Live", code="LIVE")
    qid = ask("Is this session being recorded?")
    assert broker.queued() == 1
    broker.restart()
    assert broker.queued() == 0  # Redis kept nothing: the doorbell is gone, the question is not
    workers.start("after-restart", **SWEEPER)
    wait_until(lambda: state(qid) == "processed", 30, "the question to be processed")


@needs_postgres
def test_submit_while_the_broker_is_down_answers_201_and_is_processed_later(broker, functions, workers):
    Event.create("Live", code="LIVE")
    broker.stop()
    started = time.monotonic()
    qid = ask("How much replication lag do you see at peak?")
    assert time.monotonic() - started < 5  # a bounded publish retry, not a hanging request
    question = Question.objects.get(pk=qid)
    assert question.state == "pending" and question.enqueued_at is None  # marked for the sweeper

    broker.start()
    workers.start("late", **SWEEPER)
    wait_until(lambda: state(qid) == "processed", 30, "the question to be processed")


@needs_postgres
def test_slow_functions_fail_the_question_then_the_sweeper_revives_it(broker, functions, workers):
    Event.create("Live", code="LIVE")
    functions.delay_s = 2.0  # beyond the client's 1 s timeout
    workers.start("impatient", INFERENCE_TIMEOUT_S="1", QUESTION_MAX_RETRIES="1", **SWEEPER)
    qid = ask("Why did you pick logical replication over streaming replication?")
    wait_until(lambda: state(qid) == "failed", 30, "the question to fail")
    question = Question.objects.get(pk=qid)
    assert question.retryable and "timed out" in question.last_error.lower()

    functions.delay_s = 0.0
    wait_until(lambda: state(qid) == "processed", 30, "the sweeper to revive the question")
    assert Question.objects.get(pk=qid).attempts >= 3


def stale_question(**fields) -> Question:
    event = Event.objects.filter(code="LIVE").first() or Event.create("Live", code="LIVE")
    question = Question.objects.create(event=event, text="Is the code on GitHub?", attendee="a")
    when = timezone.now() - timedelta(minutes=5)
    Question.objects.filter(pk=question.pk).update(enqueued_at=when, **fields)
    return Question.objects.get(pk=question.pk)


def test_sweep_sends_stale_questions_once_and_leaves_fresh_ones(broker):
    stale = stale_question()
    Question.objects.create(event=stale.event, text="A fresh one?", attendee="b")  # just sent: not due
    first = recovery.sweep()
    second = recovery.sweep()
    assert (first.resent, second.resent) == (1, 0)
    assert broker.queued() == 1
    assert Question.objects.get(pk=stale.pk).enqueued_at > timezone.now() - timedelta(seconds=30)


def test_claim_succeeds_for_one_of_two_sweepers_holding_the_same_row(broker):
    question = stale_question()
    now = timezone.now()
    assert lifecycle.claim(question.pk, "pending", question.enqueued_at, now)
    assert not lifecycle.claim(question.pk, "pending", question.enqueued_at, now)


@needs_postgres
def test_two_sweepers_at_once_send_a_stale_question_once(broker):
    stale_question()
    barrier = threading.Barrier(2, timeout=10)
    results: list[recovery.SweepResult] = []

    def sweep_in_thread() -> None:
        try:
            barrier.wait()
            results.append(recovery.sweep())
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep_in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert len(results) == 2
    assert sum(r.resent for r in results) == 1
    assert broker.queued() == 1


def test_sweep_revives_transient_failures_only_and_gives_up_at_the_cap(broker, settings):
    transient = stale_question(state="failed", retryable=True, attempts=2)
    permanent = stale_question(state="failed", retryable=False, attempts=1)
    hopeless = stale_question(state="pending", attempts=settings.QUESTION_MAX_ATTEMPTS)
    result = recovery.sweep()
    assert (result.revived, result.resent, result.gave_up) == (1, 0, 1)
    assert Question.objects.get(pk=transient.pk).state == "pending"
    assert Question.objects.get(pk=permanent.pk).state == "failed"
    hopeless = Question.objects.get(pk=hopeless.pk)
    assert hopeless.state == "failed" and not hopeless.retryable and "gave up" in hopeless.last_error
    assert broker.queued() == 1


def test_sweep_questions_command_prints_what_it_sent_as_json(broker):
    stale_question()
    out = io.StringIO()
    call_command("sweep_questions", "--json", stdout=out)
    assert json.loads(out.getvalue().strip().splitlines()[-1])["resent"] == 1
    assert broker.queued() == 1
