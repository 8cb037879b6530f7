"""Benchmark the functions the way the research measured them: latency quantiles per concurrency
level, throughput, cost per million calls, and cold starts.

    python -m embeddings.bench --backend local --concurrency 1,5,10,20 --requests 2000 --json
    python -m embeddings.bench --cold 5 --json
    python -m embeddings.bench --compare-torch      # in an environment with sentence-transformers

Texts are real short sentences (STSb test, first column). Latency is the function's own duration;
throughput is calls completed per wall-clock second with C clients calling at once.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from embeddings import cli
from embeddings.datasets import read_sts
from embeddings.pricing import cost_per_million

DEFAULT_TEXTS = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "stsb" / "stsb-en-test.csv"


def load_texts(path: Path, limit: int = 1000) -> list[str]:
    seen: dict[str, None] = {}
    for pair in read_sts(path):
        seen.setdefault(pair.a, None)
    return list(seen)[:limit]


def local_caller(function: str, model: str | None, encoding: str, threads: int) -> Callable[[list[str]], None]:
    os.environ["EMBEDDINGS_THREADS"] = str(threads)
    os.environ.setdefault("EMBEDDINGS_PRELOAD", "")
    from embeddings import handlers

    handler = handlers.FUNCTIONS[function]

    def call(texts: list[str]) -> None:
        event: dict[str, Any] = {"texts": texts, "encoding": encoding}
        if model:
            event["model"] = model
        response = handler(event, None)
        if "errorType" in response:
            raise RuntimeError(response["errorMessage"])

    return call


def run_level(call: Callable[[list[str]], None], texts: list[str], concurrency: int, requests: int, batch: int) -> dict[str, Any]:
    """``requests`` calls spread over ``concurrency`` client threads calling back to back."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        nonlocal errors
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            chunk = [texts[(i * batch + k) % len(texts)] for k in range(batch)]
            start = time.perf_counter()
            try:
                call(chunk)
            except Exception:  # noqa: BLE001 - a benchmark counts failures, it does not stop on them
                with lock:
                    errors += 1
                continue
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)

    workers = [threading.Thread(target=client) for _ in range(concurrency)]
    wall = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - wall
    ms = np.array(latencies) if latencies else np.array([float("nan")])
    return {
        "concurrency": concurrency,
        "requests": requests,
        "throughput_per_s": round(len(latencies) / wall, 1),
        "mean_ms": round(float(ms.mean()), 3),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "errors": errors,
        "latencies": latencies,
    }


COLD_CHILD = """
import json, os, sys, time
t0 = time.perf_counter()
import numpy, onnxruntime, tokenizers
from embeddings import handlers
from embeddings.runtime import get_model
t1 = time.perf_counter()
name = sys.argv[1] or (handlers.DEFAULT_EMBEDDING_MODEL if sys.argv[2] == "embed" else handlers.DEFAULT_SENTIMENT_MODEL)
get_model(name)
t2 = time.perf_counter()
response = handlers.FUNCTIONS[sys.argv[2]]({"texts": ["How will the new roadmap affect the mobile team?"], "model": name}, None)
t3 = time.perf_counter()
assert "errorType" not in response, response
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2, "cold": response["cold"]}))
"""


def cold_starts(n: int, function: str, model: str | None, threads: int) -> dict[str, Any]:
    """N fresh processes, each timed from spawn to its first answer."""
    env = dict(os.environ, EMBEDDINGS_PRELOAD="", EMBEDDINGS_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")]))
    runs = []
    for _ in range(n):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", COLD_CHILD, model or "", function], env=env, capture_output=True, text=True, check=False
        )
        total = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"cold-start child failed: {out.stderr.strip().splitlines()[-1:]}")
        runs.append({**json.loads(out.stdout.strip().splitlines()[-1]), "total_s": total})
    return {
        "runs": n,
        "median_s": round(statistics.median(r["total_s"] for r in runs), 4),
        "import_s": round(statistics.median(r["import_s"] for r in runs), 4),
        "load_s": round(statistics.median(r["load_s"] for r in runs), 4),
        "first_call_s": round(statistics.median(r["first_call_s"] for r in runs), 4),
        "first_call_cold": all(r["cold"] for r in runs),
    }


def torch_baseline(texts: list[str], threads: int, requests: int) -> dict[str, Any]:
    """sentence-transformers on torch, the same all-MiniLM-L6-v2 weights, one text per call."""
    import torch
    from sentence_transformers import SentenceTransformer

    from embeddings.training.export import minilm_l6_folder

    torch.set_num_threads(max(threads, 1))
    model = SentenceTransformer(str(minilm_l6_folder()), device="cpu")
    for text in texts[:20]:
        model.encode([text])
    latencies = []
    for i in range(requests):
        start = time.perf_counter()
        model.encode([texts[i % len(texts)]])
        latencies.append((time.perf_counter() - start) * 1000)
    return {
        "model": "sentence-transformers all-MiniLM-L6-v2 (torch fp32)",
        "p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "p99_ms": round(float(np.percentile(latencies, 99)), 3),
    }


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    if args.backend != "local":
        raise ValueError(f"--backend {args.backend!r}: this version knows only 'local'")
    texts = load_texts(args.texts)
    result: dict[str, Any] = {
        "backend": args.backend,
        "function": args.function,
        "model": args.model,
        "threads": args.threads,
        "encoding": args.encoding,
        "batch": args.batch,
        "memory_mb": args.memory_mb,
        "results": [],
    }
    if args.requests:
        call = local_caller(args.function, args.model, args.encoding, args.threads)
        from embeddings import handlers

        result["model"] = args.model or (
            handlers.DEFAULT_EMBEDDING_MODEL if args.function == "embed" else handlers.DEFAULT_SENTIMENT_MODEL
        )
        run_level(call, texts, 1, min(200, args.requests), args.batch)  # warm up
        for level in args.concurrency:
            row = run_level(call, texts, level, args.requests, args.batch)
            row["cost_per_million_usd"] = cost_per_million(row.pop("latencies"), args.memory_mb)
            result["results"].append(row)
    if args.cold:
        result["cold"] = cold_starts(args.cold, args.function, args.model, args.threads)
    if args.compare_torch:
        baseline = torch_baseline(texts, args.threads, min(args.requests or 500, 1000))
        ours = next((r for r in result["results"] if r["concurrency"] == 1), None)
        if ours:
            baseline["speedup_p50"] = round(baseline["p50_ms"] / ours["p50_ms"], 2)
        result["torch"] = baseline
    return result


def show(result: dict[str, Any]) -> None:
    print(f"backend {result['backend']}  function {result['function']}  model {result['model']}  "
          f"threads {result['threads']}  batch {result['batch']}  cost at {result['memory_mb']} MB")
    if result["results"]:
        print(f"{'C':>4} {'calls/s':>9} {'mean':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'errors':>7} {'$/M calls':>10}")
        for r in result["results"]:
            print(f"{r['concurrency']:>4} {r['throughput_per_s']:>9} {r['mean_ms']:>8} {r['p50_ms']:>8} "
                  f"{r['p95_ms']:>8} {r['p99_ms']:>8} {r['errors']:>7} {r['cost_per_million_usd']:>10}")
    if "cold" in result:
        c = result["cold"]
        print(f"cold start: median {c['median_s']} s (import {c['import_s']} s, load {c['load_s']} s, "
              f"first call {c['first_call_s']} s) over {c['runs']} fresh processes")
    if "torch" in result:
        t = result["torch"]
        print(f"{t['model']}: p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms; speed-up at p50 {t.get('speedup_p50')}x")


def levels(value: str) -> list[int]:
    try:
        parsed = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {value!r}") from None
    if not parsed or min(parsed) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be >= 1")
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m embeddings.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local")
    parser.add_argument("--function", choices=["embed", "sentiment"], default="embed")
    parser.add_argument("--model", help="model name (default: the function's default)")
    parser.add_argument("--concurrency", type=levels, default=[1, 5, 10, 20])
    parser.add_argument("--requests", type=int, default=1000, help="calls per concurrency level (0: none)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (Lambda < 1,769 MB: 1)")
    parser.add_argument("--encoding", choices=["json", "base64"], default="json")
    parser.add_argument("--batch", type=int, default=1, help="texts per call")
    parser.add_argument("--memory-mb", type=int, default=1024, help="Lambda memory size for the cost column")
    parser.add_argument("--cold", type=int, default=0, help="also time N fresh processes to their first answer")
    parser.add_argument("--compare-torch", action="store_true", help="also time sentence-transformers on torch")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="STSb-format CSV of texts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    return cli.run(lambda: benchmark(args), args.json, show)


if __name__ == "__main__":
    sys.exit(main())
