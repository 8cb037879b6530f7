"""The local function host, driven by boto3's own Lambda client and by plain HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import boto3
import pytest
import urllib3
from botocore.config import Config

from embeddings.client import get_functions
from embeddings.errors import FunctionError, InvalidRequest
from tests.conftest import ROOT, needs_stsb


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_host(*args: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "embeddings.host", "--port", str(port), *args],
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
    process, url = start_host("--workers", "1", "--preload", "minilm-l3", "--delay-file", str(delay))
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
        "embeddings.bench", *target, "--concurrency", "1,4", "--requests", "40", "--encoding", "base64", "--json"
    )
    assert code == 0, err
    assert result["model"] == "minilm-l6"
    assert [r["errors"] for r in result["results"]] == [0, 0]
    assert all(r["throughput_per_s"] > 0 and r["cost_per_million_usd"] > 0.2 for r in result["results"])


def test_fuzzed_bodies_never_crash_the_host(host: str):
    from hypothesis import given, settings
    from hypothesis import strategies as st

    http = urllib3.PoolManager()
    events = st.one_of(
        st.binary(max_size=300),
        st.dictionaries(
            st.sampled_from(["texts", "model", "encoding", "x"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=50), st.lists(st.text(max_size=320), max_size=70)),
        ).map(lambda d: json.dumps(d).encode()),
    )

    @settings(max_examples=80, deadline=None)
    @given(body=events, function=st.sampled_from(["embed", "sentiment"]))
    def call(body: bytes, function: str) -> None:
        response = http.request("POST", f"{host}/functions/{function}", body=body)
        assert response.status in (200, 400), response.data
        data = json.loads(response.data)
        assert ("errorType" in data) or ("embeddings" in data) or ("results" in data)

    call()
    assert healthz(host)["idle"] == 2 and healthz(host)["replaced"] >= 0


@needs_stsb
def test_bench_compares_the_host_with_in_process_calls_side_by_side(host: str):
    from tests.conftest import run_module

    code, result, err = run_module(
        "embeddings.bench",
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
