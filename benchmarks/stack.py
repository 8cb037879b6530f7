"""The whole app as subprocesses on free ports, for the load and fault benchmarks.

PostgreSQL (its own database, dropped and created again), a private redis-server that keeps nothing
on disk, the function host with two workers, two Celery workers (``--pool=solo``, as deploy/stack.sh)
and the web app under gunicorn (deploy/gunicorn.conf.py, as deploy/stack.sh; no collectstatic: the
benchmarks load the API and the pages, not the static files). ``web_instances=2`` (or
``start_web(2)``) adds a second gunicorn on its own port, as a second machine behind a load balancer
would be: same database, same Redis. Every simulated attendee comes from 127.0.0.1, so the
per-address rate limits are raised. The helpers break things on purpose: kill -9 a Celery worker,
kill a host worker, stop and start the host, restart Redis, make the functions slow.

    with Stack() as stack:
        stack.create_events(["LOAD1"])
        ... drive http://127.0.0.1:{stack.web_port} (stack.web_url(path, i) for instance i) ...

Logs go to ``stack.workdir / "logs"``; the directory is removed on exit unless ``keep=True``.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432")
DATABASE = "asktwice_bench"
CELERY_WORKERS = 2
# gunicorn per web instance: 3 processes of 8 threads on 2 cores (the polls wait on the database
# more than they compute). Each process has its own connection pool of DB_POOL_MAX_SIZE: two
# instances hold at most 2 x 3 x 10 = 60 connections, plus the Celery workers', under max_connections (100).
WEB_WORKERS = 3
WEB_THREADS = 8
WEB_DB_POOL = 10
WEB = (sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "webapp.wsgi")
# As deploy/stack.sh runs them.
CELERY_WORKER = (
    *(sys.executable, "-m", "celery", "-A", "webapp", "worker", "--pool=solo", "--concurrency=1"),
    *("--loglevel=INFO", "--without-gossip", "--without-mingle"),
)
# Nothing on disk: a restart loses the queue, as with the Redis this app is deployed with.
REDIS_SERVER = ("redis-server", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except (OSError, psycopg.Error):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready within {timeout:.0f} s")
        time.sleep(interval)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


class Stack:
    """Start with ``start()`` (or ``with``), stop with ``stop()``; every process is ours to kill."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        database: str = DATABASE,
        host_timeout_s: float = 30.0,
        keep: bool = False,
        web_instances: int = 1,
        web_workers: int = WEB_WORKERS,
        web_threads: int = WEB_THREADS,
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="asktwice-bench-"))
        self.logs = self.workdir / "logs"
        self.logs.mkdir()
        self.delay_file = self.workdir / "function-delay-s"
        self.database = database
        self.host_timeout_s = host_timeout_s
        self.keep = keep
        self.web_instances, self.web_workers, self.web_threads = web_instances, web_workers, web_threads
        self.web_ports = {i: free_port() for i in range(1, web_instances + 1)}
        self.web_port = self.web_ports[1]
        self.host_port, self.redis_port = free_port(), free_port()
        self.database_url = f"{POSTGRES_URL}/{database}"
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "webapp.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "INFERENCE_BACKEND": "http",
            "INFERENCE_URL": f"http://127.0.0.1:{self.host_port}",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "VAR_DIR": str(self.workdir / "var"),
            "EMBEDDINGS_THREADS": "1",
            "LOG_LEVEL": "INFO",
            # Every simulated attendee is 127.0.0.1: per-address limits would throttle the crowd.
            "POSTS_PER_MINUTE_PER_ADDRESS": "1000000",
            "ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS": "1000000",
            "VOTES_PER_MINUTE": "100000",
            "SIMILAR_PER_MINUTE": "100000",
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self._groups: set[str] = set()  # started in a process group of their own (a master and its workers)
        self._log_files: list[Any] = []
        self._ready_from: dict[int, int] = {}

    # --- start and stop ---------------------------------------------------------------------
    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self._create_database()
            self.start_redis()
            self._run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], "migrate")
            self.start_host()
            for i in range(1, CELERY_WORKERS + 1):
                self.start_worker(i, wait=False)
            for i in range(1, self.web_instances + 1):
                self.start_web(i)
            for i in range(1, CELERY_WORKERS + 1):
                self.wait_worker(i)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        # Workers first (SIGTERM lets a solo worker finish its task), then what they depend on.
        for name in sorted(self.processes, key=lambda n: (not n.startswith("worker"), n)):
            self._terminate(name)
        for file in self._log_files:
            file.close()
        self._log_files.clear()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _create_database(self) -> None:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.database}"')

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, group: bool = False
    ) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # closed in stop()
        self._log_files.append(log)
        process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=group,
        )
        self.processes[name] = process
        if group:
            self._groups.add(name)
        return process

    def _run(self, argv: list[str], name: str, timeout: float = 120.0) -> str:
        out = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError(f"{name} failed ({out.returncode}): {out.stderr[-2000:]}")
        return out.stdout

    def _terminate(self, name: str, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        process = self.processes.pop(name, None)
        group = name in self._groups
        self._groups.discard(name)
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        if group:  # whatever the master left behind (its pid is the group's id)
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # --- the services ---------------------------------------------------------------------------
    def start_redis(self) -> None:
        self._spawn(
            "redis",
            [*REDIS_SERVER, "--port", str(self.redis_port), "--dir", str(self.workdir)],
        )
        wait_for(lambda: self.redis().ping(), 10, "redis")

    def stop_redis(self) -> None:
        self._terminate("redis")

    def restart_redis(self, down_s: float = 0.0) -> None:
        """Everything queued in Redis is gone: it keeps nothing on disk, as configured here."""
        self.stop_redis()
        time.sleep(down_s)
        self.start_redis()

    def redis(self) -> Any:
        import redis

        return redis.Redis(port=self.redis_port, socket_timeout=2)

    def start_host(self) -> None:
        self._spawn(
            "host",
            [
                # The production host, plus a delay file that set_slow writes (test only).
                *(sys.executable, "-m", "benchmarks.slow_host", "--delay-file", str(self.delay_file)),
                *("--port", str(self.host_port), "--workers", "2", "--timeout", str(self.host_timeout_s)),
            ],
        )
        wait_for(lambda: http_get(self.host_url("/healthz"))[0] == 200, 120, "function host", 0.2)

    def stop_host(self) -> None:
        self._terminate("host")

    def host_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.host_port}{path}"

    def host_worker_pid(self) -> int:
        """The pid of the host worker that answers next (the host names it in X-Worker-Pid)."""
        body = json.dumps({"texts": ["which worker are you?"]}).encode()
        request = urllib.request.Request(self.host_url("/functions/embed"), data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.headers["X-Worker-Pid"])

    def kill_host_worker(self) -> int:
        """kill -9 one of the host's workers; the host answers its call with an error and replaces it."""
        pid = self.host_worker_pid()
        os.kill(pid, signal.SIGKILL)
        return pid

    def set_slow(self, seconds: float) -> None:
        """Every function call waits this long in its worker first (0: back to normal)."""
        if seconds > 0:
            self.delay_file.write_text(str(seconds))
        else:
            self.delay_file.unlink(missing_ok=True)

    def start_worker(self, i: int, wait: bool = True) -> None:
        name = f"worker{i}"
        log = self.logs / f"{name}.log"
        self._ready_from[i] = log.stat().st_size if log.exists() else 0  # wait_worker reads this start's lines
        self._spawn(
            name,
            [*CELERY_WORKER, "-n", f"{name}@bench"],
        )
        if wait:
            self.wait_worker(i)

    def wait_worker(self, i: int, timeout: float = 60.0) -> None:
        log = self.logs / f"worker{i}.log"
        start = self._ready_from.get(i, 0)
        wait_for(lambda: b" ready." in log.read_bytes()[start:], timeout, f"celery worker {i}", 0.2)

    def kill_worker(self, i: int) -> int:
        """kill -9 a Celery worker: no warm shutdown, its unacknowledged task stays in Redis."""
        process = self.processes.pop(f"worker{i}")
        process.kill()
        process.wait(10)
        return process.pid

    def start_web(self, i: int = 1) -> None:
        """gunicorn instance ``i`` (a new port from 2 on), in a process group of its own."""
        port = self.web_ports.setdefault(i, free_port())
        env = {
            "PORT": str(port),
            "WEB_WORKERS": str(self.web_workers),
            "WEB_THREADS": str(self.web_threads),
            "DB_POOL_MAX_SIZE": str(WEB_DB_POOL),
        }
        # Its own control socket: gunicorn's default path is one per machine user, shared by every instance.
        argv = [*WEB, "--control-socket", str(self.workdir / f"web{i}.ctl")]
        self._spawn(f"web{i}", argv, env=env, group=True)
        wait_for(lambda: http_get(self.web_url("/api/events/NOPE/questions", i))[0] == 404, 60, f"web app {i}", 0.2)

    def stop_web(self, i: int = 1) -> None:
        self._terminate(f"web{i}")

    def web_url(self, path: str, i: int = 1) -> str:
        return f"http://127.0.0.1:{self.web_ports[i]}{path}"

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time so far of each service (the process and its descendants), and of PostgreSQL (every
        ``postgres`` process on the machine: the server is shared)."""
        hz = os.sysconf("SC_CLK_TCK")
        parent: dict[int, int] = {}
        ticks: dict[int, int] = {}
        postgres = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                text = stat.read_text(encoding="utf-8")
            except OSError:
                continue  # ended while we looked
            fields = text[text.rindex(")") + 2 :].split()
            pid = int(stat.parent.name)
            # utime + stime, and cutime + cstime: the children it reaped (ended backends, replaced workers)
            parent[pid], ticks[pid] = int(fields[1]), sum(int(x) for x in fields[11:15])
            if text[text.index("(") + 1 : text.rindex(")")] == "postgres":
                postgres += ticks[pid]
        children: dict[int, list[int]] = {}
        for pid, ppid in parent.items():
            children.setdefault(ppid, []).append(pid)
        totals: dict[str, float] = {}
        for name, process in self.processes.items():
            todo, total = [process.pid], 0
            while todo:
                pid = todo.pop()
                total += ticks.get(pid, 0)
                todo += children.get(pid, [])
            kind = name.rstrip("0123456789")  # web1, web2 -> web; worker1, worker2 -> worker
            totals[kind] = totals.get(kind, 0.0) + total / hz
        totals["postgres"] = postgres / hz
        return totals

    # --- data -----------------------------------------------------------------------------------
    def create_events(self, codes: list[str]) -> None:
        script = (
            "from webapp.events.models import Event\n"
            f"for code in {codes!r}:\n"
            "    Event.objects.filter(code=code).exists() or Event.create('Benchmark ' + code, code=code)\n"
        )
        self._run([sys.executable, "manage.py", "shell", "-c", script], "create events")

    def create_moderator(self, code: str, username: str) -> str:
        """A plain user who moderates the event; returns the password to sign in with."""
        password = secrets.token_urlsafe(12)
        script = (
            "from django.contrib.auth import get_user_model\n"
            "from webapp.events.models import Event\n"
            f"user = get_user_model().objects.create_user({username!r}, password={password!r})\n"
            f"Event.objects.get(code={code!r}).moderators.add(user)\n"
        )
        self._run([sys.executable, "manage.py", "shell", "-c", script], "create moderator")
        return password

    @contextmanager
    def db(self) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            yield conn

    def sweeps(self) -> dict[str, int]:
        """What the workers' sweepers did so far, summed from their logs ("sweep: {...}" lines)."""
        total: Counter[str] = Counter()
        for log in self.logs.glob("worker*.log"):
            for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
                if "sweep: {" in line:
                    total.update(ast.literal_eval(line[line.index("sweep: {") + 7 :]))
        return dict(total)

    def unacked_question_ids(self) -> set[int]:
        """Questions whose task a worker took and has not acknowledged (Redis's ``unacked`` hash)."""
        ids: set[int] = set()
        for raw in self.redis().hvals("unacked"):
            message = json.loads(raw)[0]
            body = message["body"]
            if message.get("properties", {}).get("body_encoding") == "base64":
                body = base64.b64decode(body)
            args = json.loads(body)[0]
            if args:
                ids.add(int(args[0]))
        return ids
