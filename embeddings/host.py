"""A local function host: N warm worker processes behind AWS Lambda's Invoke API.

    python -m embeddings.host --port 9000 --workers 2

Routes:
- ``POST /2015-03-31/functions/{name}/invocations``: Lambda's Invoke API, so
  ``boto3.client("lambda", endpoint_url="http://127.0.0.1:9000")`` works unchanged;
- ``POST /functions/{name}``: plain JSON in and out, like a Function URL or a Cloud Function;
- ``GET /healthz``: the workers and the functions.

Each worker is one "container": it imports the handlers (loading the models) once, then serves one
call at a time, as a Lambda instance does. A call waits for a free worker. A worker that dies or
overruns ``--timeout`` is replaced, and its call is answered with an error, never left hanging.
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.connection import Connection
from typing import Any
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

    delay_file = env.get("EMBEDDINGS_HOST_DELAY_FILE")
    conn.send_bytes(b"ready")
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if delay_file:
            time.sleep(injected_delay_s(delay_file))
        name, _, body = message.partition(b"\n")
        try:
            event = json.loads(body)
            response = handlers.FUNCTIONS[name.decode()](event, None)
        except Exception as exc:
            response = {"errorType": type(exc).__name__, "errorMessage": str(exc)}
            conn.send_bytes(b"E" + json.dumps(response).encode())
            continue
        conn.send_bytes(b"O" + json.dumps(response).encode())


def injected_delay_s(path: str) -> float:
    """Test only (fault benchmarks): the seconds written in ``path`` that a call waits; 0 without the file."""
    try:
        with open(path) as file:
            return max(0.0, float(file.read().strip() or 0))
    except (OSError, ValueError):
        return 0.0


class WorkerDied(Exception):
    pass


class WorkerTimedOut(Exception):
    pass


class Worker:
    def __init__(self, ctx: Any, env: dict[str, str], ready_timeout: float) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=worker_main, args=(child, env), daemon=True)
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

    def __init__(self, size: int, env: dict[str, str], timeout: float, ready_timeout: float = 120.0) -> None:
        self.ctx = mp.get_context("spawn")  # a fresh interpreter per container, as on Lambda
        self.env = env
        self.timeout = timeout
        self.ready_timeout = ready_timeout
        self.size = size
        self.idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self.replaced = 0
        for _ in range(size):
            self.idle.put(Worker(self.ctx, env, ready_timeout))

    def call(self, function: str, body: bytes) -> tuple[bool, bytes, int]:
        """(ok, response JSON, pid of the worker that answered)."""
        worker = self.idle.get()
        try:
            result = worker.call(function, body, self.timeout)
        except (WorkerDied, WorkerTimedOut):
            worker.kill()
            # Answer the caller now; the new container warms up in the background.
            threading.Thread(target=self._replace, daemon=True).start()
            raise
        self.idle.put(worker)
        return (*result, worker.process.pid)

    def _replace(self) -> None:
        self.replaced += 1
        try:
            self.idle.put(Worker(self.ctx, self.env, self.ready_timeout))
        except RuntimeError:
            log.exception("could not start a replacement worker; the pool is one worker short")

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
        super().setup()
        # Headers and body go out in separate writes; without NODELAY, Nagle's algorithm meets
        # the client's delayed ACK and every call waits ~40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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
        if self.path.rstrip("/") == "/healthz":
            pool = self.server.pool
            body = {
                "status": "ok",
                "workers": pool.size,
                "idle": pool.idle.qsize(),
                "replaced": pool.replaced,
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
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._error(411, "InvalidRequestContentException", "Content-Length required", invoke_api)
            self.close_connection = True
            return
        if int(length) > MAX_PAYLOAD_BYTES:
            self._error(
                413,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation",
                invoke_api,
            )
            self.close_connection = True  # the unread body would corrupt the next request
            return
        body = self.rfile.read(int(length)) if int(length) else b"{}"
        if name not in FUNCTION_NAMES:
            self._error(404, "ResourceNotFoundException", f"Function not found: {name}", invoke_api)
            return
        try:
            json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._error(
                400, "InvalidRequestContentException", f"Could not parse request body into json: {exc}", invoke_api
            )
            return
        try:
            ok, response, pid = self.server.pool.call(name, body)
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
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], pool: Pool) -> None:
        super().__init__(address, Handler)
        self.pool = pool


def serve(host: str, port: int, workers: int, timeout: float, env: dict[str, str]) -> None:
    started = time.perf_counter()
    pool = Pool(workers, env, timeout)
    server = HostServer((host, port), pool)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embeddings.host", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--workers", type=int, default=2, help="warm worker processes (containers)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a call may take (Lambda's timeout)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads per worker")
    parser.add_argument("--preload", default=None, help="models each worker loads at start (default: both defaults)")
    parser.add_argument(
        "--delay-file",
        default=None,
        help="test only: while this file holds a number, every call first waits that many seconds in its worker",
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    env = {"EMBEDDINGS_THREADS": str(args.threads)}
    if args.preload is not None:
        env["EMBEDDINGS_PRELOAD"] = args.preload
    if args.delay_file:
        env["EMBEDDINGS_HOST_DELAY_FILE"] = os.path.abspath(args.delay_file)
    serve(args.host, args.port, args.workers, args.timeout, env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
