"""The memory of one process's index cache: 1,000 events of 1,000 questions, bounded and not.

    python -m benchmarks.index_cache [--events 1000] [--questions 1000] [--bound 200000]

Each event's index is built from random unit vectors (384 wide, as the shipped model's) and handed
to the cache as a search would (``webapp.questions.index._used``), with INDEX_CACHE_MAX_VECTORS at
``--bound`` and then without a bound; the process's resident memory is read after every 100 events.
Each run is a fresh interpreter, so one cannot inherit the other's memory. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fill(events: int, questions: int, bound: int) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    os.environ["INDEX_CACHE_MAX_VECTORS"] = str(bound)
    import django

    django.setup()
    import numpy as np

    from webapp.questions import index

    rng = np.random.default_rng(0)
    start = rss_mb()
    curve = []
    for event_id in range(1, events + 1):
        vectors = rng.standard_normal((questions, 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        built = index.VectorIndex(384)
        ids = np.arange(event_id * questions, (event_id + 1) * questions, dtype=np.int64)
        built.add(ids, vectors)
        index._used((event_id, "minilm-l6"), index._Cached(built, questions, int(ids.max())))
        if event_id % 100 == 0:
            cached_events, cached = index.cached_vectors()
            curve.append({"events_served": event_id, "cached_events": cached_events, "rss_mb": round(rss_mb() - start)})
    cached_events, cached = index.cached_vectors()
    return {
        "bound": bound,
        "cached_events": cached_events,
        "cached_vectors": cached,
        "grew_mb": curve[-1]["rss_mb"],
        "curve": curve,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.index_cache", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--bound", type=int, default=200_000)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # a child run
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(fill(args.events, args.questions, args.bound)))
        return 0
    runs = []
    for bound in (args.bound, args.events * args.questions):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.index_cache",
                "--one",
                "--events",
                str(args.events),
                "--questions",
                str(args.questions),
                "--bound",
                str(bound),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({"events": args.events, "questions": args.questions, "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
