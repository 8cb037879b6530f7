"""The benchmark harness reports what it measured; figures are asserted for shape, never for speed."""

from __future__ import annotations

import os
import threading

import pytest

from benchmarks.pricing import GB_SECOND_USD, REQUEST_USD, cost_per_million
from tests.conftest import needs_stsb, run_module


def test_cost_rounds_each_call_up_to_the_billing_unit():
    # 2.1 ms at 1 ms billing is billed as 3 ms; at 1,024 MB that is 0.003 GB-s.
    expected = (0.003 * GB_SECOND_USD + REQUEST_USD) * 1_000_000
    assert cost_per_million([2.1, 2.9], memory_mb=1024) == pytest.approx(expected, abs=1e-4)
    # The old 100 ms billing makes the same calls cost 0.1 GB-s each.
    old = (0.1 * GB_SECOND_USD + REQUEST_USD) * 1_000_000
    assert cost_per_million([2.1], memory_mb=1024, billing_ms=100) == pytest.approx(old, abs=1e-4)
    assert cost_per_million([2.1], memory_mb=512) < cost_per_million([2.1], memory_mb=1024)


@needs_stsb
def test_bench_json_has_the_contract_keys():
    code, result, err = run_module(
        "benchmarks.bench",
        "--backend",
        "local",
        "--concurrency",
        "1,2",
        "--requests",
        "40",
        "--model",
        "minilm-l3",
        "--cold",
        "1",
        "--json",
    )
    assert code == 0, err
    assert result["backend"] == "local" and result["model"] == "minilm-l3" and result["threads"] == 1
    assert [r["concurrency"] for r in result["results"]] == [1, 2]
    for row in result["results"]:
        assert set(row) == {
            "concurrency",
            "requests",
            "throughput_per_s",
            "mean_ms",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "errors",
            "cost_per_million_usd",
        }
        assert row["errors"] == 0 and row["requests"] == 40
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
        assert row["cost_per_million_usd"] > REQUEST_USD * 1_000_000
    cold = result["cold"]
    assert cold["first_call_cold"] is True
    assert cold["median_s"] >= cold["import_s"] + cold["load_s"] + cold["first_call_s"] > 0


@needs_stsb
def test_bench_rejects_bad_levels_and_unknown_backend():
    code, _, err = run_module("benchmarks.bench", "--concurrency", "0,x", "--json")
    assert code == 2 and "concurrency" in err
    code, _, err = run_module("benchmarks.bench", "--backend", "carrier-pigeon", "--requests", "1", "--json")
    assert code == 2 and "carrier-pigeon" in err and "Traceback" not in err


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread niceness is Linux's")
def test_client_threads_can_yield_the_cpu_to_the_functions():
    from benchmarks.bench import run_level

    seen: list[int] = []

    def call(texts: list[str]) -> float:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return 1.0

    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    row = run_level(call, ["a", "b"], concurrency=3, requests=9, batch=1, client_nice=7)
    assert row["errors"] == 0 and len(seen) == 9
    assert set(seen) == {min(own + 7, 19)}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the calling thread keeps its own
