"""The question list every page polls, read and serialised once per event version in each process.

In a room of 1,000 attendees every vote changes the event's version (live.py), so nearly every poll
misses its ETag and needs the list; reading and serialising 200 questions for each of them took
~8-11 ms, and the polls of the whole room queued behind each other. The list is the same for everyone
but for who asks (their own questions, their votes), so each process keeps the public part of the
latest versions it served and adds only the asker's part to it: two small queries, and a copy of
the few rows that are theirs.

A snapshot is read after its version, so it is never older than the version it is kept under (at
worst newer, as the ETag's answer may be): live.py explains why.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from webapp.events import codes
from webapp.events.models import Event
from webapp.questions.models import Question, Vote
from webapp.questions.serialize import question_json

MAX_ROWS = 500
MAX_MINE = 50
# Snapshots kept per process: the latest version of each (event, sort) polled, least recently used
# dropped past this many (a snapshot of 500 questions is about 1 MB).
MAX_SNAPSHOTS = 64
# What no row of the list shows: the vector (1.5 KB a question) and the processing details.
UNSHOWN = ("vector", "timings", "last_error")


@dataclass
class Snapshot:
    event: Event
    rows: list[Question]
    shared: list[dict[str, Any]]  # question_json of each row as anyone but its asker sees it
    event_json: dict[str, Any] = field(default_factory=dict)


_snapshots: OrderedDict[tuple[str, str], tuple[str, Snapshot]] = OrderedDict()  # (code, sort) -> (version, it)
_lock = threading.Lock()


def snapshot(code: str, sort: str, version: str | None) -> Snapshot | None:
    """The event's public questions in ``sort`` order (votes or time) at ``version``, the event's
    live version read by the caller (None: the cache is down, nothing kept); None for no such event.

    ``code`` is normalised (webapp/events/codes.py), as the cache's version key is.
    """
    if not codes.is_valid(code):
        return None
    key = (code, sort)
    if version is not None:
        with _lock:
            found = _snapshots.get(key)
            if found is not None and found[0] == version:
                _snapshots.move_to_end(key)
                return found[1]
    event = Event.objects.by_code(code)
    if event is None:
        return None
    public = Question.objects.for_event(event).public().defer(*UNSHOWN)
    rows = list((public.by_votes() if sort == "votes" else public.by_time())[:MAX_ROWS])
    on_stage = next((q.pk for q in rows if q.now_answering), None)
    built = Snapshot(
        event=event,
        rows=rows,
        shared=[question_json(q) for q in rows],
        event_json={"code": event.code, "title": event.title, "open": event.is_open, "now_answering": on_stage},
    )
    if version is not None:
        with _lock:
            # Race: a poll that read the version before a change may store its snapshot after one
            # of the newer version; the next poll of the newer version then reads the list again
            # (one more read, never an answer older than its version).
            _snapshots[key] = (version, built)
            _snapshots.move_to_end(key)
            while len(_snapshots) > MAX_SNAPSHOTS:
                _snapshots.popitem(last=False)
    return built


def listing(code: str, sort: str, me: str | None, version: str | None) -> dict[str, Any] | None:
    """What the question list answers ``me`` (an attendee id, or None) at ``version``; None for no
    such event."""
    snap = snapshot(code, sort, version)
    if snap is None:
        return None
    mine_rows: list[Question] = []
    voted: set[int] = set()
    if me is not None:
        mine = Question.objects.for_event(snap.event).filter(attendee=me).exclude(status=Question.Status.VISIBLE)
        mine_rows = list(mine.defer(*UNSHOWN).select_related("merged_into").order_by("-created_at")[:MAX_MINE])
        voted = set(Vote.objects.filter(question__event=snap.event, attendee=me).values_list("question_id", flat=True))
    # Race: a question merged or hidden since the snapshot would be in both lists, and the page
    # would show it twice. The query of one's own is the newer state.
    newer = {q.pk for q in mine_rows}
    questions = [
        question_json(q, me, voted=q.pk in voted) if q.attendee == me or q.pk in voted else shared
        for q, shared in zip(snap.rows, snap.shared, strict=True)
        if q.pk not in newer
    ]
    return {"event": snap.event_json, "questions": questions, "mine": [question_json(q, me) for q in mine_rows]}


def forget() -> None:
    """Drop this process's snapshots (tests)."""
    with _lock:
        _snapshots.clear()
