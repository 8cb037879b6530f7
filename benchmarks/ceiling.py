"""How many questions a second one event can process: the per-event ceiling.

Processing a question takes its event's row lock for the search-and-store step (refresh the FAISS
index, search again, flag, store), so one event's questions go through that step one at a time
whatever the number of workers. This enqueues N questions at once (one transaction: every task is
sent at its commit) on the full stack (benchmarks/stack.py: PostgreSQL, Redis, the Celery workers,
the function host), first all to one event, then split between several events, and times until all
are processed. The same total in both runs: if the split runs faster, the lock is the limit; if not,
the workers (or the cores) are. Texts are the load benchmark's (a third paraphrase an earlier one).

    python -m benchmarks.ceiling                 # 200 questions, 2 workers, 1 then 2 events
    python -m benchmarks.ceiling --questions 400 --workers 4 --events 1,2,4 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

from benchmarks import load
from benchmarks.stack import CELERY_WORKERS, ROOT, Stack

SUBMIT = """
import json, sys
from django.db import transaction
from webapp.events.models import Event
from webapp.questions import actions
batches = json.loads(sys.stdin.read())
with transaction.atomic():  # every task is sent when this commits, all at once
    for code, texts in batches.items():
        event = Event.objects.get(code=code)
        for i, text in enumerate(texts):
            actions.submit_question(event, text, attendee=f"ceiling-{code}-{i}")
"""


def submit(stack: Stack, batches: dict[str, list[str]]) -> None:
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SUBMIT],
        cwd=ROOT,
        env=stack.env,
        input=json.dumps(batches),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"submit failed: {out.stderr[-2000:]}")


def wait_processed(stack: Stack, codes: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while any(load.backlog(stack, code) for code in codes):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not processed within {timeout:.0f} s")
        time.sleep(0.1)


def measure(stack: Stack, run: str, events: int, total: int, texts: load.Texts, timeout: float) -> dict[str, Any]:
    """``total`` questions split evenly over ``events`` new events, submitted in one commit."""
    codes = [f"{run}E{i}" for i in range(1, events + 1)]
    stack.create_events(codes)
    batches = {code: [texts.next()[1] for _ in range(total // events)] for code in codes}
    submit(stack, batches)
    wait_processed(stack, codes, timeout)
    rows = [r for code in codes for r in load.questions(stack, code)]
    first_created = min(r["created_at"] for r in rows)
    last_processed = max(r["processed_at"] for r in rows)
    processed = sorted(r["processed_at"] for r in rows)
    span_s = (last_processed - first_created).total_seconds()
    # Between the first and the last question processed: the rate once the workers are busy.
    steady_s = (processed[-1] - processed[0]).total_seconds()

    def median(key: str) -> float | None:
        values = [r["timings"][key] for r in rows if r["timings"] and key in r["timings"]]
        return round(statistics.median(values), 1) if values else None

    return {
        "events": events,
        "questions": len(rows),
        "all_processed_after_s": round(span_s, 2),
        "questions_per_s": round(len(rows) / span_s, 1),
        "steady_questions_per_s": round((len(rows) - 1) / steady_s, 1) if steady_s > 0 else None,
        "flagged": sum(r["first_flag_at"] is not None for r in rows),
        "timings_median_ms": {key: median(key) for key in load.TIMING_KEYS},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ceiling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="enqueued at once in each run (default 200)")
    parser.add_argument("--workers", type=int, default=CELERY_WORKERS, help="Celery workers (default 2)")
    parser.add_argument("--events", default="1,2", help="the runs: how many events share the questions")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a run may take")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line at the end")
    args = parser.parse_args(argv)
    runs = [int(n) for n in args.events.split(",")]
    texts = load.Texts(seed=7)
    results = []
    with Stack(database="asktwice_bench_ceiling") as stack:
        for i in range(CELERY_WORKERS + 1, args.workers + 1):
            stack.start_worker(i)
        for i in range(args.workers + 1, CELERY_WORKERS + 1):
            stack.kill_worker(i)
        # Warm: the functions' first calls in each worker, the index code paths.
        measure(stack, "WARM", 1, 20, texts, args.timeout)
        print(
            f"{args.workers} Celery workers (solo pool), function host with 2 workers, PostgreSQL, Redis; "
            f"{args.questions} questions enqueued at once per run",
            flush=True,
        )
        for n, events in enumerate(runs, 1):
            result = measure(stack, f"C{n}", events, args.questions, texts, args.timeout)
            results.append(result)
            t = result["timings_median_ms"]
            print(
                f"  {events} event(s): {result['questions']} questions processed after "
                f"{result['all_processed_after_s']} s: {result['questions_per_s']} questions/s "
                f"({result['steady_questions_per_s']}/s between the first and the last processed); "
                f"medians ms: queue {t['queue']}, embed {t['embed']}, sentiment {t['sentiment']}, "
                f"verify {t['verify']}, lock wait {t['lock']}, index {t['index']}, db {t['db']}, total {t['total']}",
                flush=True,
            )
    if args.json:
        print(json.dumps({"workers": args.workers, "questions": args.questions, "runs": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
