"""Issue 6 item 9: faults during a load run, and nothing lost.

One stack (benchmarks/stack.py) with the sweeper tuned to act within seconds; for each fault a fresh
event, a crowd of attendees posting and voting (benchmarks/load.py, pauses compressed), and the fault
injected a few seconds in:

- ``host_worker_killed``: kill -9 one of the function host's workers (it is replaced);
- ``host_restarted``: stop the whole function host, start it again some seconds later;
- ``redis_restarted``: with tasks queued (the functions slowed for a moment), stop redis-server,
  which keeps nothing on disk, for two seconds: the queue is lost, and posts find no broker;
- ``celery_worker_killed``: kill -9 a Celery worker in the middle of a task (the functions are made
  slow for a moment so both workers are inside one), and start it again as a supervisor would;
- ``slow_functions``: every call takes longer than the client's timeout for a while.

For each: questions accepted (201), processed in the end, lost (accepted but not processed by the
deadline; must be 0), duplicate flags missed (paraphrase pairs that a replay of the stored vectors
in processing order flags, benchmarks/load.py::expected_flags, but the run did not), and the time
from the end of the fault until every question accepted by then was processed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import load, machine
from benchmarks.stack import Stack
from benchmarks.summary import table

FAULTS = ("none", "host_worker_killed", "host_restarted", "redis_restarted", "celery_worker_killed", "slow_functions")
# The settings the fault runs use: recovery within seconds rather than the production minute.
ENV = {
    "QUESTION_RESEND_AFTER_S": "10",
    "QUESTION_SWEEP_INTERVAL_S": "2",
    "INFERENCE_TIMEOUT_S": "2",
    "QUESTION_MAX_RETRIES": "3",
    "POSTS_PER_MINUTE": "600",
}
DEADLINE_S = 180.0  # after the load ends, what is not processed by then counts as lost


class Timeline:
    """Seconds since the load started, for the fault's start and end."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.marks: dict[str, float] = {}

    def now(self) -> float:
        return round(time.monotonic() - self.start, 2)

    def mark(self, name: str) -> None:
        self.marks[name] = self.now()

    def sleep_until(self, at: float) -> None:
        time.sleep(max(0.0, at - self.now()))


def inject(stack: Stack, fault: str, timeline: Timeline, quick: bool) -> dict[str, Any]:
    """Break one thing; returns what happened (pids, orphaned questions). Ends when the fault ends."""
    info: dict[str, Any] = {}
    timeline.mark("fault_start")
    if fault == "host_worker_killed":
        info["killed_pid"] = stack.kill_host_worker()
    elif fault == "host_restarted":
        stack.stop_host()
        time.sleep(3 if quick else 8)
        stack.start_host()
    elif fault == "redis_restarted":
        # Slow calls first, so tasks wait in the queue when Redis goes (and takes them along).
        stack.set_slow(1.0)
        time.sleep(4)
        info["queued_before"] = stack.redis().llen("celery")
        stack.restart_redis(down_s=2)  # posts meanwhile find no broker
        stack.set_slow(0)
    elif fault == "celery_worker_killed":
        # Slow calls keep both workers inside a task, so the kill lands in the middle of one.
        stack.set_slow(1.0)
        time.sleep(2.5)
        before = stack.unacked_question_ids()
        info["killed_pid"] = stack.kill_worker(1)
        stack.set_slow(0)
        timeline.mark("fault_end")
        time.sleep(5)  # a supervisor restarts it a few seconds later
        # The survivor acknowledged its own tasks meanwhile; what is still unacknowledged was the
        # dead worker's: it waits for the visibility timeout in Redis, or for the sweeper.
        info["orphaned"] = sorted(before & stack.unacked_question_ids())
        stack.start_worker(1)
        return info
    elif fault == "slow_functions":
        stack.set_slow(4.0)  # the client gives up after INFERENCE_TIMEOUT_S = 2
        time.sleep(4 if quick else 15)
        stack.set_slow(0)
    timeline.mark("fault_end")
    return info


def scenario(stack: Stack, fault: str, quick: bool, seed: int) -> dict[str, Any]:
    code = f"FAULT{seed}"
    stack.create_events([code])
    attendees, seconds, scale, fault_at = (10, 14.0, 0.1, 3.0) if quick else (30, 35.0, 0.3, 8.0)
    sweeps_before = stack.sweeps()
    crowd: list[load.Crowd] = []
    runner = threading.Thread(
        target=lambda: crowd.append(
            asyncio.run(load.crowd_run(stack.web_port, code, attendees, seconds, scale, seed=seed))
        )
    )
    timeline = Timeline()
    runner.start()
    info: dict[str, Any] = {}
    cleared_s: float | None = None
    try:
        timeline.sleep_until(fault_at)
        if fault != "none":
            info = inject(stack, fault, timeline, quick)
        else:
            timeline.mark("fault_start")
            timeline.mark("fault_end")
        cleared_s = backlog_cleared(stack, code, timeline)
    finally:
        runner.join()
    timeline.mark("load_end")
    deadline = time.monotonic() + DEADLINE_S
    while load.backlog(stack, code) and time.monotonic() < deadline:
        time.sleep(0.5)
    timeline.mark("all_done")
    summary = load.summarise(stack, code, crowd[0], seconds)
    rows = {r["id"]: r for r in load.questions(stack, code)}
    accepted = set(crowd[0].posted)
    processed = {qid for qid in accepted if rows.get(qid, {}).get("state") == "processed"}
    if "orphaned" in info:
        info["orphaned_processed"] = sum(qid in processed for qid in info["orphaned"])
    sweeps_after = stack.sweeps()
    result = {
        "fault": fault,
        "attendees": attendees,
        "seconds": seconds,
        "timeline_s": timeline.marks,
        "accepted": len(accepted),
        "processed": len(processed),
        "lost": len(accepted - processed),
        "lost_ids": sorted(accepted - processed)[:50],
        "failed_in_the_end": sum(rows[q]["state"] == "failed" for q in accepted - processed if q in rows),
        "retried": summary["retried"],
        "post_statuses": {k: v for k, v in summary["statuses"].items() if k.startswith("post")},
        "http_errors": summary["http_errors"],
        "backlog_cleared_after_fault_s": cleared_s,
        "paraphrase_pairs": summary["paraphrase_pairs"],
        "paraphrase_pairs_flagged": summary["paraphrase_pairs_flagged"],
        "expected_paraphrase_flags": summary["expected_paraphrase_flags"],
        "flags_missed": summary["expected_flags_missed"],
        "all_flags_missed": summary["replayed_flags_missed"],
        "all_flags_expected": summary["replayed_flags"],
        "submit_to_processed_ms": summary["submit_to_processed_ms"],
        "sweeps": {k: sweeps_after.get(k, 0) - sweeps_before.get(k, 0) for k in sweeps_after},
        **info,
    }
    print(
        f"  {fault}: accepted {result['accepted']}, processed {result['processed']}, lost {result['lost']}, "
        f"flags missed {result['flags_missed']}/{result['expected_paraphrase_flags']}, backlog cleared "
        f"{cleared_s} s after the fault, sweeps {result['sweeps']}",
        flush=True,
    )
    return result


def backlog_cleared(stack: Stack, code: str, timeline: Timeline, timeout: float = DEADLINE_S) -> float | None:
    """Seconds from the fault's end until every question stored by then is processed."""
    with stack.db() as conn:
        last = conn.execute(
            "SELECT coalesce(max(q.id), 0) FROM questions_question q JOIN events_event e ON e.id = q.event_id "
            "WHERE e.code = %s",
            [code],
        ).fetchone()[0]

    def left() -> int:
        with stack.db() as conn:
            return conn.execute(
                "SELECT count(*) FROM questions_question q JOIN events_event e ON e.id = q.event_id "
                "WHERE e.code = %s AND q.id <= %s AND q.state <> 'processed'",
                [code, last],
            ).fetchone()[0]

    end = timeline.marks["fault_end"]
    while left():
        if timeline.now() - end > timeout:
            return None
        time.sleep(0.2)
    return round(timeline.now() - end, 2)


def run(quick: bool, faults: tuple[str, ...] = FAULTS, progress: Callable[[str], None] = print) -> dict[str, Any]:
    before = machine.snapshot()
    with Stack(env=ENV) as stack:
        results = [scenario(stack, fault, quick, seed=i + 1) for i, fault in enumerate(faults)]
    lost = sum(r["lost"] for r in results)
    progress(f"  lost in all faults: {lost}")
    return {
        "started": before["at"],
        "machine": machine.machine(),
        "load_before": before,
        "load_after": machine.snapshot(),
        "settings": ENV,
        "deadline_s": DEADLINE_S,
        "faults": results,
        "lost_total": lost,
    }


def section(data: dict[str, Any], figures_dir: Path) -> str:
    faults = data["faults"]
    settings = ", ".join(f"`{k}={v}`" for k, v in data["settings"].items())
    lines = [
        "## Faults during load, and nothing lost (issue 6, item 9)",
        "",
        f"The whole app as in the load runs, with {settings}. Each fault hits a fresh event while "
        f"{faults[0]['attendees']} attendees post and vote for {load.fmt(faults[0]['seconds'])} s. Lost: accepted "
        f"(201) but not processed {load.fmt(data['deadline_s'])} s after the load ended. Flags missed: "
        "paraphrase pairs that a replay of the stored vectors in processing order flags and the run "
        "did not. Backlog cleared: from the end of the fault until every question stored by then was "
        "processed. Sweeps: what the workers' sweepers sent again (resent pending, revived failures).",
        "",
        table(
            [
                "fault",
                "accepted",
                "processed",
                "lost",
                "flags missed / expected",
                "backlog cleared after s",
                "retried",
                "HTTP errors",
                "sweeps",
            ],
            [
                [
                    r["fault"].replace("_", " "),
                    r["accepted"],
                    r["processed"],
                    f"**{r['lost']}**",
                    f"{r['flags_missed']} / {r['expected_paraphrase_flags']}"
                    + (
                        f" (all flags: {r['all_flags_missed']} / {r['all_flags_expected']})"
                        if "all_flags_missed" in r
                        else ""
                    ),
                    load.fmt(r["backlog_cleared_after_fault_s"], 1),
                    r["retried"],
                    ", ".join(f"{k}: {v}" for k, v in r["http_errors"].items()) or "none",
                    ", ".join(f"{k} {v}" for k, v in r["sweeps"].items() if v) or "-",
                ]
                for r in faults
            ],
        ),
    ]
    killed = next((r for r in faults if r["fault"] == "celery_worker_killed"), None)
    if killed and "orphaned" in killed:
        lines += [
            "",
            f"The killed Celery worker held {len(killed['orphaned'])} unacknowledged task(s) "
            f"({killed.get('orphaned_processed', 0)} processed in the end by the sweeper's resend; "
            "Redis would have handed them back only after the visibility timeout).",
        ]
    restarted = next((r for r in faults if r["fault"] == "redis_restarted"), None)
    if restarted and "queued_before" in restarted:
        lines += [
            "",
            f"Redis went down with {restarted['queued_before']} task(s) queued; they were gone when it came back "
            "(nothing on disk), and the sweeper sent those questions again from the database.",
        ]
    return "\n".join(lines)
