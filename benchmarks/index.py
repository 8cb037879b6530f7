"""The per-event index at scale: flat against HNSW at 10k, 100k (and, when asked, 1M) vectors.

Runs ``python manage.py bench_index --json`` (synthetic clustered question vectors, one query at
a time, one thread) and reads the switch size from the app's settings. ``BENCH_INDEX_SIZES``
overrides the sizes (``BENCH_INDEX_SIZES=10000,100000,1000000``: the 1M HNSW build alone takes
tens of minutes on one thread).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from benchmarks import machine, plots
from benchmarks.summary import cell, field, median, spread, table, values

ROOT = Path(__file__).resolve().parent.parent
SIZES = (10_000, 50_000, 100_000)  # 50,000 is the app's default switch
QUICK_SIZES = (2_000,)
REPEATS = 3
REPEAT_BELOW = 50_000  # sizes from here are built once: a 100k HNSW build takes minutes
QUERIES = 1000
SIMILAR_BUDGET_MS = 20.0  # the similar-questions endpoint's p95 target (docs/app.md)


def sizes_from_env(default: tuple[int, ...]) -> list[int]:
    text = os.environ.get("BENCH_INDEX_SIZES", "").strip()
    if not text:
        return list(default)
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"BENCH_INDEX_SIZES must be whole numbers separated by commas, got {text!r}") from None


def bench_index(sizes: list[int], queries: int) -> dict[str, Any]:
    command = ["manage.py", "bench_index", "--sizes", ",".join(map(str, sizes)), "--queries", str(queries), "--json"]
    out = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"bench_index failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(quick: bool) -> dict[str, Any]:
    sizes = list(QUICK_SIZES) if quick else sizes_from_env(SIZES)
    queries = 200 if quick else QUERIES
    repeats = {size: 1 if quick or size >= REPEAT_BELOW else REPEATS for size in sizes}
    data: dict[str, Any] = {
        "machine": machine.machine(),
        "started": machine.now(),
        "load_before": machine.snapshot(),
        "repeats": max(repeats.values()),
        "repeats_per_size": {str(s): r for s, r in repeats.items()},
        "queries": queries,
    }
    cells: dict[int, dict[str, list[dict[str, Any]]]] = {s: {"flat": [], "hnsw": []} for s in sizes}
    runs = []
    for r in range(max(repeats.values())):
        batch = [s for s in sizes if repeats[s] > r]
        print(f"   index sizes {batch}, repeat {r + 1}", flush=True)
        result = bench_index(batch, queries)
        runs.append({"sizes": batch, "peak_rss_bytes": result["peak_rss_bytes"]})
        for row in result["results"]:
            cells[row["size"]]["flat"].append(row["flat"])
            cells[row["size"]]["hnsw"].append(row["hnsw"])
        data.update(switch_at=result["switch_at"], hnsw_params=result["hnsw_params"], dim=result["dim"])
    data["sizes"] = [{"size": s, **cells[s]} for s in sizes]
    data["runs"] = runs
    data["load_after"] = machine.snapshot()
    data["finished"] = machine.now()
    return data


def _interpolate(x: float, xs: list[float], ys: list[float]) -> float:
    """Piecewise linear in log(size), flat beyond the ends."""
    if x <= xs[0]:
        return ys[0]
    if x >= xs[-1]:
        return ys[-1]
    for (x0, y0), (x1, y1) in zip(zip(xs, ys), zip(xs[1:], ys[1:])):
        if x0 <= x <= x1:
            t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
            return y0 + t * (y1 - y0)
    return ys[-1]


def crossover(data: dict[str, Any]) -> dict[str, Any]:
    """Where a flat search (linear in the vectors, fitted) starts to cost more than an HNSW one."""
    rows = data["sizes"]
    sizes = [float(r["size"]) for r in rows]
    flat = [median(r["flat"], "p50_ms") for r in rows]
    hnsw = [median(r["hnsw"], "p50_ms") for r in rows]
    build = [median(r["hnsw"], "build_s") for r in rows]
    # Flat reads every vector: cost = a + b * size; least squares through the measured sizes.
    if len(sizes) > 1:
        mx, my = sum(sizes) / len(sizes), sum(flat) / len(flat)
        b = sum((x - mx) * (y - my) for x, y in zip(sizes, flat)) / sum((x - mx) ** 2 for x in sizes)
        a = my - b * mx
    else:
        a, b = 0.0, flat[0] / sizes[0]
    found = None
    n = 1000.0
    while n <= max(sizes[-1], 2_000_000):
        if a + b * n >= _interpolate(n, sizes, hnsw):
            found = n
            break
        n *= 1.05
    switch = data["switch_at"]
    measured = dict(zip(sizes, flat))
    return {
        "flat_ms_per_10k": b * 10_000,
        "crossover": found,
        "flat_p50_at_switch": measured.get(switch, a + b * switch),
        "flat_at_switch_measured": switch in measured,
        "largest": sizes[-1],
        "flat_p50_at_largest": flat[-1],
        "hnsw_p50_at_largest": hnsw[-1],
        "hnsw_p50_at_switch": _interpolate(switch, sizes, hnsw),
        "hnsw_build_at_switch": _interpolate(switch, sizes, build) if switch <= sizes[-1] else None,
        "switch": switch,
    }


def _rows(data: dict[str, Any]) -> list[list[Any]]:
    """One table row per size and structure."""
    rows = []
    for r in data["sizes"]:
        for name, label in (("flat", "flat"), ("hnsw", "HNSW")):
            reps = r[name]
            megabytes = cell([b / 1e6 for b in values(reps, "index_bytes")], 1)
            per_vector = f"{median(reps, 'index_bytes') / r['size']:,.0f}"
            recall = field(reps, "recall_at_5", 4) if name == "hnsw" else "1 (exact)"
            rows.append(
                [
                    f"{r['size']:,}",
                    label,
                    field(reps, "build_s", 3),
                    megabytes,
                    per_vector,
                    field(reps, "p50_ms", 3),
                    field(reps, "p99_ms", 3),
                    recall,
                    len(reps),
                ]
            )
    return rows


def _reading(c: dict[str, Any]) -> tuple[str, str, str, str]:
    """What the crossover says of the switch setting, in words: (how, crossing, build, verdict)."""
    how = "measured" if c["flat_at_switch_measured"] else "fitted"
    saving = c["flat_p50_at_switch"] - c["hnsw_p50_at_switch"]
    crossing = (
        f"a flat search costs {c['flat_ms_per_10k']:.3f} ms more per 10,000 vectors (least squares over the sizes) "
        + (
            f"and passes HNSW's p50 at about {c['crossover']:,.0f} vectors"
            if c["crossover"]
            else "and stays below HNSW's p50 at every measured size"
        )
    )
    build = (
        f"; building the graph at that size takes about {c['hnsw_build_at_switch']:.0f} s "
        f"({'measured' if c['flat_at_switch_measured'] else 'interpolated'}), once in "
        "every process that loads the event"
        if c["hnsw_build_at_switch"] is not None
        else ""
    )
    budget = SIMILAR_BUDGET_MS / 4
    later = (
        f" Past it the flat search keeps growing (at {c['largest']:,.0f} vectors {c['flat_p50_at_largest']:.2f} ms "
        f"against {c['hnsw_p50_at_largest']:.2f} ms for HNSW)."
        if c["largest"] > c["switch"]
        else ""
    )
    if c["crossover"] and c["crossover"] <= c["switch"] and c["flat_p50_at_switch"] < budget:
        verdict = (
            f"Between the crossover and the switch HNSW would save at most {saving:.2f} ms per search, while the flat "
            f"search stays within a quarter of the similar endpoint's {SIMILAR_BUDGET_MS:g} ms p95 budget and needs "
            f"no graph build.{later} The numbers support the setting."
        )
    else:
        verdict = (
            "The numbers do not clearly support the setting (a flat search at the switch "
            f"{'exceeds a quarter of' if c['flat_p50_at_switch'] >= budget else 'stays within'} the "
            f"similar endpoint's {SIMILAR_BUDGET_MS:g} ms p95 budget; the crossover is "
            f"{'beyond it' if not c['crossover'] or c['crossover'] > c['switch'] else 'before it'}).{later} Re-run "
            "at a quiet time, and move `INDEX_HNSW_MIN_VECTORS` if this holds."
        )
    return how, crossing, build, verdict


def section(data: dict[str, Any], figures_dir: Path) -> str:
    rows = _rows(data)
    c = crossover(data)
    how, crossing, build, verdict = _reading(c)
    params = data["hnsw_params"]
    low, high = spread([r["peak_rss_bytes"] / 2**20 for r in data["runs"]])[1:]
    peak = f"{high:,.0f}" if round(low) == round(high) else f"{low:,.0f}-{high:,.0f}"
    note = machine.busy_note(data)
    return "\n".join(
        [
            "## Index scale: flat against HNSW",
            "",
            *([note, ""] if note else []),
            f"`python manage.py bench_index --sizes ... --queries {data['queries']:,} --json` "
            "(`benchmarks/index.py`; `BENCH_INDEX_SIZES=10000,100000,1000000 python -m benchmarks --parts index` "
            "adds 1M, which takes most of an hour): synthetic vectors clustered like question embeddings, "
            f"{data['dim']} dimensions, queries one at a time on one thread; HNSW `M` {params['M']}, "
            f"`efConstruction` {params['ef_construction']}, `efSearch` {params['ef_search']}. Memory is the "
            f"serialized index, close to what it holds in RAM (the benchmark process peaked at {peak} MiB). "
            f"The runs column says how often a size was measured: sizes from {REPEAT_BELOW:,} vectors are built "
            "once (their graph builds take from half a minute to most of an hour), so their spread is not known. "
            "The method and earlier runs: "
            "[app.md](app.md#index-scale-flat-then-hnsw).",
            "",
            table(
                [
                    "vectors",
                    "structure",
                    "build s",
                    "memory MB",
                    "bytes per vector",
                    "query p50 ms",
                    "query p99 ms",
                    "recall@5",
                    "runs",
                ],
                rows,
            ),
            "",
            f"![Index scale]({_plot(data, figures_dir)})",
            "",
            f"The app switches an event from flat to HNSW at {c['switch']:,} vectors (`INDEX_HNSW_MIN_VECTORS`). "
            f"Measured here, {crossing}. At {c['switch']:,} vectors a flat search takes about "
            f"{c['flat_p50_at_switch']:.2f} ms at p50 ({how}) against {c['hnsw_p50_at_switch']:.2f} ms for HNSW"
            f"{build}. {verdict}",
        ]
    )


def _plot(data: dict[str, Any], figures_dir: Path) -> str:
    rows = data["sizes"]
    x = [r["size"] for r in rows]
    fig, axes = plots.figure(3, width=3.5, height=3.1)
    for name, label, color in (("flat", "flat", "#1f77b4"), ("hnsw", "HNSW", "#d62728")):
        for key, style, q in (("p50_ms", "-", "p50"), ("p99_ms", "--", "p99")):
            found = [spread(values(r[name], key)) for r in rows]
            mid = [f[0] for f in found]
            err = plots.errorbars(mid, [f[1] for f in found], [f[2] for f in found])
            axes[0].errorbar(
                x, mid, yerr=err, color=color, linestyle=style, marker="o", capsize=2, label=f"{label} {q}"
            )
        axes[2].plot(x, [median(r[name], "build_s") for r in rows], color=color, marker="o", label=label)
    axes[1].plot(x, [median(r["hnsw"], "recall_at_5") for r in rows], color="#d62728", marker="o", label="HNSW")
    axes[0].set_title("query latency, one at a time")
    axes[0].set_ylabel("ms (log)")
    axes[1].set_title("HNSW recall@5 (flat is exact)")
    axes[1].set_ylim(min(0.95, min(median(r["hnsw"], "recall_at_5") for r in rows) - 0.005), 1.001)
    axes[2].set_title("build time")
    axes[2].set_ylabel("s (log)")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{n / 1000:g}k" if n < 1_000_000 else f"{n / 1e6:g}M" for n in x])
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("vectors in the index")
        ax.axvline(data["switch_at"], color="grey", linestyle=":", label="app's switch")
    axes[0].set_yscale("log")
    axes[2].set_yscale("log")
    plots.plain_log(axes[0])
    axes[0].legend()
    axes[2].legend()
    return plots.save(fig, figures_dir, "index.png")
