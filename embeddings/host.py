"""A local function host: N warm worker processes behind AWS Lambda's Invoke API.

    python -m embeddings.host --port 9000 --workers 2

Routes:
- ``POST /2015-03-31/functions/{name}/invocations``: Lambda's Invoke API, so
  ``boto3.client("lambda", endpoint_url="http://127.0.0.1:9000")`` works unchanged;
- ``POST /functions/{name}``: plain JSON in and out, like a Function URL or a Cloud Function;
- ``GET /healthz``: the workers and the functions.

Each worker is one "container": it imports the handlers (loading the models) once, then serves one
call at a time, as a Lambda instance does. A call waits for a free worker, at most ``--timeout``
(then 429 TooManyRequestsException). A worker that dies or overruns ``--timeout`` is replaced, and
its call is answered with an error, never left hanging.

Slow clients cannot hold the host: a connection that has not sent a whole request within
``--read-timeout`` is closed (an idle keep-alive connection too), and at most ``--max-connections``
are served at once, one thread each (see :class:`HostServer`).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import os
import queue
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any, Literal
from urllib.parse import unquote

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # Lambda's synchronous invocation limit
INVOKE_PREFIX = "/2015-03-31/functions/"
INVOKE_SUFFIX = "/invocations"
PLAIN_PREFIX = "/functions/"
FUNCTION_NAMES = ("embed", "sentiment", "verify")  # the names in embeddings.handlers.FUNCTIONS

log = logging.getLogger("embeddings.host")


def worker_main(conn: Connection, env: dict[str, str]) -> None:
    """One warm container: load once, then answer calls until the pipe closes."""
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host stops its workers itself
    from embeddings import handlers

    conn.send_bytes(b"ready")
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        name, _, body = message.partition(b"\n")
        try:
            event = json.loads(body)
            response = handlers.FUNCTIONS[name.decode()](event, None)
        except Exception as exc:
            response = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            conn.send_bytes(b"E" + json.dumps(response).encode())
            continue
        conn.send_bytes(b"O" + json.dumps(response).encode())


WorkerMain = Callable[[Connection, dict[str, str]], None]


class WorkerDied(Exception):
    pass


class WorkerTimedOut(Exception):
    pass


class NoFreeWorker(Exception):
    """Every worker stayed busy (or none could start) for as long as a call may take."""


class Worker:
    def __init__(self, ctx: Any, env: dict[str, str], ready_timeout: float, target: WorkerMain = worker_main) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(child, env), daemon=True)
        self.process.start()
        child.close()
        if not self.conn.poll(ready_timeout):
            self.kill()
            raise RuntimeError(f"worker did not start within {ready_timeout} s")
        try:
            self.conn.recv_bytes()
        except EOFError:
            raise RuntimeError(f"worker exited during start-up (exit code {self.process.exitcode})") from None

    def call(self, function: str, body: bytes, timeout: float) -> tuple[bool, bytes]:
        """(ok, response JSON); ok is False for an unhandled error inside the function."""
        try:
            self.conn.send_bytes(function.encode() + b"\n" + body)
            if not self.conn.poll(timeout):
                raise WorkerTimedOut(f"Task timed out after {timeout:.2f} seconds")
            reply = self.conn.recv_bytes()
        except (EOFError, OSError, BrokenPipeError):
            raise WorkerDied(f"worker {self.process.pid} died (exit code {self.process.exitcode})") from None
        return reply[:1] == b"O", reply[1:]

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class Pool:
    """Idle workers on a stack; a call borrows one, and a broken one is replaced.

    Last in, first out, as Lambda reuses the warmest instance: at low concurrency one worker takes
    every call and stays hot (its caches and branch predictors warm). Round-robin over two workers
    cost the 6-layer model most of a millisecond per call (docs/functions.md).
    """

    def __init__(
        self,
        size: int,
        env: dict[str, str],
        timeout: float,
        ready_timeout: float = 120.0,
        target: WorkerMain = worker_main,
    ) -> None:
        self.ctx = mp.get_context("spawn")  # a fresh interpreter per container, as on Lambda
        self.env = env
        self.timeout = timeout
        self.ready_timeout = ready_timeout
        self.target = target
        self.size = size
        self.idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self.replaced = 0
        self.missing = 0  # replacements that failed to start
        self._lock = threading.Lock()
        self._retrying = False
        for _ in range(size):
            self.idle.put(Worker(self.ctx, env, ready_timeout, target))

    def call(self, function: str, body: bytes) -> tuple[bool, bytes, int]:
        """(ok, response JSON, pid of the worker that answered)."""
        self._retry_missing()
        try:
            worker = self.idle.get(timeout=self.timeout)
        except queue.Empty:
            raise NoFreeWorker(
                f"no worker came free within {self.timeout:g} s ({self.size - self.missing} of {self.size} running)"
            ) from None
        try:
            result = worker.call(function, body, self.timeout)
        except (WorkerDied, WorkerTimedOut):
            worker.kill()
            # Answer the caller now; the new container warms up in the background.
            self.replaced += 1
            threading.Thread(target=self._start_one, daemon=True).start()
            raise
        self.idle.put(worker)
        return (*result, worker.process.pid)

    def _start_one(self, retry: bool = False) -> None:
        try:
            worker = Worker(self.ctx, self.env, self.ready_timeout, self.target)
        except (RuntimeError, OSError):
            log.exception("could not start a worker; the pool is one short until a call tries again")
            if not retry:
                with self._lock:
                    self.missing += 1
            return
        if retry:
            with self._lock:
                self.missing -= 1
        self.idle.put(worker)

    def _retry_missing(self) -> None:
        """Start again a worker that failed to start, one attempt at a time."""
        with self._lock:
            if not self.missing or self._retrying:
                return
            self._retrying = True

        def retry() -> None:
            try:
                self._start_one(retry=True)
            finally:
                self._retrying = False

        threading.Thread(target=retry, daemon=True).start()

    def pids(self) -> list[int]:
        """Idle workers' pids, the next to take a call first."""
        return [w.process.pid for w in reversed(list(self.idle.queue))]

    def close(self) -> None:
        while not self.idle.empty():
            self.idle.get_nowait().kill()


def lambda_error(error_type: str, message: str) -> bytes:
    return json.dumps({"Type": "User", "message": message, "Message": message, "__type": error_type}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 and the HTTP client expect
    server: HostServer

    def setup(self) -> None:
        # Each read and write on the socket; the whole request has its own deadline (HostServer).
        self.timeout = self.server.read_timeout
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm meets
        # the client's delayed ACK and every call waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        if self.server.stopping.is_set():
            self.close_connection = True
            return
        self.server.reading(self.connection)
        try:
            super().handle_one_request()
        except OSError as exc:  # timed out, or closed by the client or by the server
            log.debug("%s connection dropped: %r", self.address_string(), exc)
            self.close_connection = True
        finally:
            self.server.done_reading(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, error_type: str, message: str, invoke_api: bool) -> None:
        if invoke_api:
            self._send(status, lambda_error(error_type, message), {"x-amzn-ErrorType": error_type})
        else:
            self._send(status, json.dumps({"errorType": error_type, "errorMessage": message}).encode())

    def do_GET(self) -> None:
        self.server.done_reading(self.connection)
        if self.path.rstrip("/") == "/healthz":
            pool = self.server.pool
            body = {
                "status": "ok",
                "workers": pool.size,
                "idle": pool.idle.qsize(),
                "replaced": pool.replaced,
                "missing": pool.missing,
                "idle_pids": pool.pids(),
                "functions": list(FUNCTION_NAMES),
            }
            self._send(200, json.dumps(body).encode())
        else:
            self._error(404, "ResourceNotFoundException", f"no route {self.path}", invoke_api=False)

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        if path.startswith(INVOKE_PREFIX) and path.endswith(INVOKE_SUFFIX):
            invoke_api, name = True, unquote(path[len(INVOKE_PREFIX) : -len(INVOKE_SUFFIX)])
            # FunctionName may be a name, a partial or full ARN (…:function:embed[:qualifier]).
            if ":function:" in name:
                name = name.split(":function:", 1)[1].split(":", 1)[0]
        elif path.startswith(PLAIN_PREFIX):
            invoke_api, name = False, path[len(PLAIN_PREFIX) :].strip("/")
        else:
            self._error(404, "ResourceNotFoundException", f"no route {path}", invoke_api=False)
            self.close_connection = True  # the body is left unread
            return
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit()):  # isdigit alone passes "²"
            self._error(411, "InvalidRequestContentException", "Content-Length required", invoke_api)
            self.close_connection = True
            return
        size = int(length) if len(length) <= 12 else MAX_PAYLOAD_BYTES + 1  # int() refuses 4,300 digits
        if size > MAX_PAYLOAD_BYTES:
            self._error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
                invoke_api,
            )
            self.close_connection = True  # the unread body would corrupt the next request
            return
        body = self.rfile.read(size) if size else b"{}"
        if len(body) < size or not self.server.done_reading(self.connection):
            self.close_connection = True  # the client left, or the server closed a late request: nobody to answer
            return
        if name not in FUNCTION_NAMES:
            self._error(404, "ResourceNotFoundException", f"Function not found: {name}", invoke_api)
            return
        try:
            json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8; an integer over the digit limit; nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            self._error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {reason}", invoke_api
            )
            return
        try:
            ok, response, pid = self.server.pool.call(name, body)
        except NoFreeWorker as exc:
            # Lambda's answer at its concurrency limit; the clients retry it.
            self._error(429, "TooManyRequestsException", str(exc), invoke_api)
            return
        except WorkerTimedOut as exc:
            self._function_failed("TimeoutError", str(exc), invoke_api, 504)
            return
        except (WorkerDied, RuntimeError) as exc:
            self._function_failed("WorkerDied", str(exc), invoke_api, 502)
            return
        # Which container answered, as a Lambda log stream would tell: reuse is visible to tests.
        headers = {"X-Worker-Pid": str(pid)}
        if invoke_api:
            headers["X-Amz-Executed-Version"] = "$LATEST"
            if not ok:
                headers["X-Amz-Function-Error"] = "Unhandled"
        self._send(200 if ok or invoke_api else 500, response, headers)

    def _function_failed(self, error_type: str, message: str, invoke_api: bool, status: int) -> None:
        body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
        if invoke_api:
            # Lambda reports a crashed or timed-out function as a 200 with X-Amz-Function-Error.
            self._send(200, body, {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"})
        else:
            self._send(status, body)


class HostServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` threads.

    A connection waiting for its request (a slow client, or an idle keep-alive one) is closed
    after ``read_timeout`` seconds. When every thread is taken, a new connection takes the place of
    the one that has waited longest for its request; when every thread is inside a call, new
    connections wait in the listen backlog.
    """

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], pool: Pool, read_timeout: float = 5.0, max_connections: int = 64
    ) -> None:
        super().__init__(address, Handler)
        self.pool = pool
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.stopping = threading.Event()
        self._slots = threading.Semaphore(max_connections)
        self._lock = threading.Lock()
        self._reading: dict[socket.socket, float] = {}  # connection -> since when it waits for a request

    def reading(self, connection: socket.socket) -> None:
        with self._lock:
            self._reading[connection] = time.monotonic()

    def done_reading(self, connection: socket.socket) -> bool:
        """False if the server closed the connection meanwhile (late, or made way for another)."""
        with self._lock:
            return self._reading.pop(connection, None) is not None

    def _close_readers(self, which: Literal["late", "oldest", "all"]) -> None:
        """Close connections waiting for their request: past the read timeout, the longest waiting, or all."""
        with self._lock:
            if which == "late":
                deadline = time.monotonic() - self.read_timeout
                closing = [c for c, since in self._reading.items() if since < deadline]
            elif which == "oldest":
                closing = [min(self._reading, key=self._reading.__getitem__)] if self._reading else []
            else:
                closing = list(self._reading)
            for connection in closing:
                del self._reading[connection]
        for connection in closing:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # its thread's read returns at once
            except OSError:
                pass  # already closed by the client

    def service_actions(self) -> None:
        self._close_readers("late")

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(blocking=False):
            self._close_readers("oldest")
            if self._slots.acquire(timeout=0.05):
                break
            self.service_actions()
            if self.stopping.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread could start
            self._slots.release()
            self.shutdown_request(request)
            log.exception("could not start a thread for a connection")

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()

    def server_close(self) -> None:
        self.stopping.set()
        self._close_readers("all")
        super().server_close()  # waits for the calls in progress


def serve(
    host: str,
    port: int,
    workers: int,
    timeout: float,
    env: dict[str, str],
    read_timeout: float = 5.0,
    max_connections: int = 64,
    target: WorkerMain = worker_main,
) -> None:
    started = time.perf_counter()
    pool = Pool(workers, env, timeout, target=target)
    server = HostServer((host, port), pool, read_timeout, max_connections)
    print(
        f"function host on http://{host}:{server.server_address[1]} with {workers} warm workers "
        f"(started in {time.perf_counter() - started:.2f} s)",
        flush=True,
    )

    def stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        pool.close()


def main(argv: list[str] | None = None, target: WorkerMain = worker_main) -> int:
    """``target``: what each worker process runs (a test host wraps :func:`worker_main`)."""
    parser = argparse.ArgumentParser(prog="python -m embeddings.host", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--workers", type=int, default=2, help="warm worker processes (containers)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a call may take, and wait for a worker (Lambda's timeout)"
    )
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per worker")
    parser.add_argument("--preload", default=None, help="models each worker loads at start (default: both defaults)")
    parser.add_argument(
        "--read-timeout", type=float, default=5.0, help="seconds a connection may take to send a whole request"
    )
    parser.add_argument("--max-connections", type=int, default=64, help="connections served at once, a thread each")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.read_timeout <= 0 or args.max_connections < 1:
        parser.error("--read-timeout must be positive and --max-connections at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    env = {"EMBEDDINGS_THREADS": str(args.threads)}
    if args.preload is not None:
        env["EMBEDDINGS_PRELOAD"] = args.preload
    serve(args.host, args.port, args.workers, args.timeout, env, args.read_timeout, args.max_connections, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
