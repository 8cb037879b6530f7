"""The local function host, driven by boto3's own Lambda client and by plain HTTP."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import boto3
import pytest
import urllib3
from botocore.config import Config

from embeddings.client import get_functions
from embeddings.errors import FunctionError, InvalidRequest
from embeddings.host import HostServer, NoFreeWorker, Pool, WorkerDied
from embeddings.host import main as host_main
from tests.conftest import ROOT, needs_stsb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_host(*args: str, module: str = "embeddings.host") -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    http = urllib3.PoolManager()
    for _ in range(300):
        try:
            if http.request("GET", url + "/healthz", timeout=1).status == 200:
                return process, url
        except urllib3.exceptions.HTTPError:
            pass
        if process.poll() is not None:
            raise RuntimeError(process.stdout.read())
        time.sleep(0.1)
    process.kill()
    raise RuntimeError("host did not start")


def stop_host(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    process, url = start_host("--workers", "2")
    yield url
    stop_host(process)


def lambda_client(url: str):
    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 0}),
    )


def healthz(url: str) -> dict:
    return json.loads(urllib3.request("GET", url + "/healthz").data)


def test_boto3_invokes_both_functions_through_the_host(host: str):
    client = lambda_client(host)
    response = client.invoke(FunctionName="embed", Payload=json.dumps({"texts": ["Will the slides be shared?"]}))
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    body = json.loads(response["Payload"].read())
    assert body["dim"] == 384 and len(body["embeddings"][0]) == 384
    response = client.invoke(FunctionName="sentiment", Payload=json.dumps({"texts": ["This talk is fantastic!"]}))
    body = json.loads(response["Payload"].read())
    assert body["results"][0]["label"] == "positive"


def test_verify_through_the_host_agrees_with_local(host: str):
    from embeddings.cards import DEFAULT_VERIFIER_MODEL, available

    if DEFAULT_VERIFIER_MODEL not in available("verifier"):
        pytest.skip(f"{DEFAULT_VERIFIER_MODEL} is not shipped")
    pairs = [("Will the slides be shared?", "can we get the deck afterwards"), ("Is room 2 open?", "Is room 3 open?")]
    local = get_functions("local").verify(pairs)
    assert local == get_functions("lambda", endpoint_url=host).verify(pairs)
    assert local == get_functions("http", url=host).verify(pairs)
    assert local[0].conflict is None and local[1].conflict == "numbers 2 / 3"


def test_boto3_by_arn_and_unknown_function(host: str):
    client = lambda_client(host)
    arn = "arn:aws:lambda:us-east-1:123456789012:function:embed"
    body = json.loads(client.invoke(FunctionName=arn, Payload=b'{"texts": ["hi?"]}')["Payload"].read())
    assert body["dim"] == 384
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="translate", Payload=b"{}")


def test_plain_json_route_and_errors(host: str):
    http = urllib3.PoolManager()
    ok = http.request("POST", host + "/functions/embed", body=b'{"texts": ["hi there?"], "encoding": "base64"}')
    assert ok.status == 200 and json.loads(ok.data)["encoding"] == "base64"
    bad_field = http.request("POST", host + "/functions/embed", body=b'{"texts": []}')
    assert bad_field.status == 200 and json.loads(bad_field.data)["field"] == "texts"
    assert http.request("POST", host + "/functions/embed", body=b"{not json").status == 400
    assert http.request("POST", host + "/functions/nope", body=b"{}").status == 404
    assert http.request("GET", host + "/nope").status == 404


def test_payload_over_six_megabytes_is_413(host: str):
    big = b'{"texts": ["' + b"x" * (6 * 1024 * 1024) + b'"]}'
    response = urllib3.PoolManager().request("POST", host + "/functions/embed", body=big)
    assert response.status == 413
    assert healthz(host)["status"] == "ok"


def test_clients_over_http_and_lambda_backends_agree_with_local(host: str):
    texts = ["How do I join the workshop?", "Where is room B?"]
    local = get_functions("local").embed(texts)
    over_http = get_functions("http", url=host).embed(texts)
    over_lambda = get_functions("lambda", endpoint_url=host).embed(texts)
    assert (abs(local - over_http).max(), abs(local - over_lambda).max()) == (0.0, 0.0)
    with pytest.raises(InvalidRequest) as info:
        get_functions("http", url=host).embed([""])
    assert info.value.field == "texts[0]" and info.value.retryable is False


def test_connection_refused_is_retryable():
    url = f"http://127.0.0.1:{free_port()}"
    for functions in (get_functions("http", url=url), get_functions("lambda", endpoint_url=url)):
        with pytest.raises(FunctionError) as info:
            functions.embed(["anyone there?"])
        assert info.value.retryable is True


def test_calls_one_at_a_time_reuse_the_warmest_worker(host: str):
    # Round-robin over idle workers ran each call of the 6-layer model ~0.7 ms slower (cold caches).
    pids = set()
    for _ in range(6):
        response = urllib3.request("POST", host + "/functions/embed", body=b'{"texts": ["same worker?"]}')
        assert response.status == 200
        pids.add(response.headers["X-Worker-Pid"])
    assert len(pids) == 1
    assert healthz(host)["idle_pids"][0] == int(pids.pop())  # the next call goes to it too


def test_a_killed_worker_is_replaced_and_its_call_answered_with_an_error(host: str):
    client = lambda_client(host)
    before = healthz(host)
    os.kill(before["idle_pids"][0], signal.SIGKILL)
    time.sleep(0.2)
    outcomes = []
    for _ in range(4):
        response = client.invoke(FunctionName="embed", Payload=b'{"texts": ["still there?"]}')
        outcomes.append(response.get("FunctionError"))
    assert outcomes.count("Unhandled") == 1  # the call that met the dead worker, answered at once
    for _ in range(100):
        after = healthz(host)
        if after["idle"] == 2:
            break
        time.sleep(0.1)
    assert after["replaced"] == before["replaced"] + 1 and after["idle"] == 2
    assert before["idle_pids"][0] not in after["idle_pids"]


def test_a_call_over_the_timeout_is_answered_and_the_worker_replaced():
    process, url = start_host("--workers", "1", "--timeout", "0.0005", "--preload", "minilm-l3")
    try:
        start = time.perf_counter()
        with pytest.raises(FunctionError) as info:
            get_functions("lambda", endpoint_url=url, embedding_model="minilm-l3").embed(["slow?"] * 64)
        assert info.value.retryable is True and "timed out" in str(info.value)
        assert time.perf_counter() - start < 5
        for _ in range(100):
            if healthz(url)["replaced"] == 1 and healthz(url)["idle"] == 1:
                break
            time.sleep(0.1)
        assert healthz(url)["replaced"] == 1
    finally:
        stop_host(process)


def test_delay_file_slows_every_call_while_it_holds_a_number(tmp_path):
    """The fault benchmarks' "slow functions" (test only): the delay is read per call, in the worker."""
    delay = tmp_path / "delay-s"
    with pytest.raises(SystemExit):
        host_main(["--delay-file", str(delay)])  # the production host has no such hook
    process, url = start_host(
        "--workers", "1", "--preload", "minilm-l3", "--delay-file", str(delay), module="benchmarks.slow_host"
    )
    try:
        functions = get_functions("http", url=url, embedding_model="minilm-l3", timeout=5)

        def call_s() -> float:
            start = time.perf_counter()
            functions.embed(["Will the slides be shared?"])
            return time.perf_counter() - start

        assert call_s() < 0.4
        delay.write_text("0.6")
        assert call_s() >= 0.6
        delay.unlink()
        assert call_s() < 0.4
    finally:
        stop_host(process)


@needs_stsb
@pytest.mark.parametrize("backend", ["http", "lambda"])
def test_bench_measures_through_the_host(host: str, backend: str):
    from tests.conftest import run_module

    target = ["--backend", host] if backend == "http" else ["--backend", "lambda", "--endpoint-url", host]
    code, result, err = run_module(
        "benchmarks.bench", *target, "--concurrency", "1,4", "--requests", "40", "--encoding", "base64", "--json"
    )
    assert code == 0, err
    assert result["model"] == "minilm-l6"
    assert [r["errors"] for r in result["results"]] == [0, 0]
    assert all(r["throughput_per_s"] > 0 and r["cost_per_million_usd"] > 0.2 for r in result["results"])


@needs_stsb
def test_bench_compares_the_host_with_in_process_calls_side_by_side(host: str):
    from tests.conftest import run_module

    code, result, err = run_module(
        "benchmarks.bench",
        "--backend",
        host,
        "--model",
        "minilm-l3",
        "--concurrency",
        "1",
        "--requests",
        "40",
        "--compare-local",
        "--json",
    )
    assert code == 0, err
    added = result["added"]
    assert added["requests"] == 40 and added["local_p50_ms"] > 0
    # Each figure is rounded to the microsecond on its own: they may disagree in the last digit.
    assert abs(added["added_p50_ms"] - (added["remote_p50_ms"] - added["local_p50_ms"])) < 0.0015


# --- slow clients, busy and missing workers ------------------------------------------------------

READ_TIMEOUT_S = 1.5
MAX_CONNECTIONS = 16
HALF_SENT = (
    b'POST /functions/embed HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\n{"texts": [',  # body cut short
    b"POST /2015-03-31/functions/embed/invocations HTTP/1.1\r\nContent-Le",  # headers cut short
    b"",  # connected, nothing sent
)


@pytest.fixture(scope="module")
def guarded_host() -> Iterator[tuple[subprocess.Popen, str]]:
    process, url = start_host(
        *("--workers", "1", "--preload", "minilm-l3"),
        *("--read-timeout", str(READ_TIMEOUT_S), "--max-connections", str(MAX_CONNECTIONS)),
    )
    yield process, url
    stop_host(process)


def threads_of(process: subprocess.Popen) -> int:
    with open(f"/proc/{process.pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))


def closed_by_host(sock: socket.socket, wait_s: float) -> bool:
    """True once the host has closed ``sock`` (without an answer), within ``wait_s``."""
    sock.settimeout(max(wait_s, 0.001))
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def wait_until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_300_half_sent_requests_neither_block_a_call_nor_grow_the_threads(guarded_host):
    process, url = guarded_host
    slow: list[socket.socket] = []
    try:
        for i in range(300):
            sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=5)
            sock.sendall(HALF_SENT[i % len(HALF_SENT)])
            slow.append(sock)
        started = time.monotonic()
        body = b'{"texts": ["Still answering?"], "model": "minilm-l3"}'
        response = urllib3.request("POST", url + "/functions/embed", body=body, timeout=5, retries=False)
        assert response.status == 200 and json.loads(response.data)["dim"] == 384
        assert time.monotonic() - started < 2
        # A thread per connection served, MAX_CONNECTIONS at most, beside the main thread.
        assert threads_of(process) <= MAX_CONNECTIONS + 2
        deadline = started + READ_TIMEOUT_S + 2
        still_open = [s for s in slow if not closed_by_host(s, deadline - time.monotonic())]
        assert still_open == []
        assert wait_until(lambda: threads_of(process) <= 3, 5), threads_of(process)
        assert healthz(url)["status"] == "ok"
    finally:
        for sock in slow:
            sock.close()


def test_the_read_timeout_bounds_the_whole_request_not_each_read(guarded_host):
    _, url = guarded_host
    request = b"POST /functions/embed HTTP/1.1\r\nContent-Length: 200\r\n\r\n" + b" " * 200
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1]))) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in request:  # a byte every 0.1 s: every read is quick, the request never ends
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed_after = time.monotonic() - started
                break
            if select.select([sock], [], [], 0.1)[0] and closed_by_host(sock, 0.1):
                closed_after = time.monotonic() - started
                break
    assert closed_after is not None and READ_TIMEOUT_S - 0.1 <= closed_after < READ_TIMEOUT_S + 1


def test_an_idle_keep_alive_connection_is_closed_and_the_client_reconnects(guarded_host):
    process, url = guarded_host
    functions = get_functions("http", url=url, embedding_model="minilm-l3", timeout=5)
    first = functions.embed(["Is the deck online?"])
    time.sleep(READ_TIMEOUT_S + 0.5)  # the host closes the connection the client keeps
    assert abs(functions.embed(["Is the deck online?"]) - first).max() == 0.0
    assert wait_until(lambda: threads_of(process) <= 3, 5)


@pytest.fixture
def one_worker_host() -> Iterator[tuple[Pool, str]]:
    """A host in this process, so a test can hold its only worker as a long call would."""
    pool = Pool(1, {"EMBEDDINGS_PRELOAD": "minilm-l3", "EMBEDDINGS_THREADS": "1"}, timeout=0.5)
    server = HostServer(("127.0.0.1", 0), pool, read_timeout=5.0, max_connections=8)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield pool, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    pool.close()


def test_a_call_that_finds_no_free_worker_within_the_timeout_is_answered_429(one_worker_host):
    pool, url = one_worker_host
    event = b'{"texts": ["Anyone free?"], "model": "minilm-l3"}'
    busy = pool.idle.get()  # the only worker, as if inside a long call
    try:
        started = time.monotonic()
        plain = urllib3.request("POST", url + "/functions/embed", body=event, timeout=5, retries=False)
        assert plain.status == 429 and json.loads(plain.data)["errorType"] == "TooManyRequestsException"
        assert 0.5 <= time.monotonic() - started < 2
        client = lambda_client(url)
        with pytest.raises(client.exceptions.TooManyRequestsException):
            client.invoke(FunctionName="embed", Payload=event)
        with pytest.raises(FunctionError) as info:
            get_functions("http", url=url, embedding_model="minilm-l3").embed(["Anyone free?"])
        assert info.value.retryable is True
    finally:
        pool.idle.put(busy)
    assert urllib3.request("POST", url + "/functions/embed", body=event, timeout=5).status == 200


def test_workers_that_fail_to_start_leave_calls_answered_and_a_later_call_starts_one():
    env = {"EMBEDDINGS_PRELOAD": "minilm-l3", "EMBEDDINGS_THREADS": "1"}
    event = b'{"texts": ["Still there?"], "model": "minilm-l3"}'
    pool = Pool(1, env, timeout=1.0)
    try:
        pool.env = {**env, "EMBEDDINGS_PRELOAD": "no-such-model"}  # a broken deployment: new workers die at init
        os.kill(pool.pids()[0], signal.SIGKILL)
        with pytest.raises(WorkerDied):
            pool.call("embed", event)
        assert wait_until(lambda: pool.missing == 1, 30)
        started = time.monotonic()
        with pytest.raises(NoFreeWorker, match="0 of 1 running"):
            pool.call("embed", event)
        assert time.monotonic() - started < 3
        pool.env = env  # repaired: a call starts the missing worker again
        answered = []

        def call() -> bool:
            try:
                answered.append(pool.call("embed", event))
            except NoFreeWorker:
                return False
            return True

        assert wait_until(call, 60)
        assert answered[0][0] is True and pool.missing == 0
    finally:
        pool.close()
