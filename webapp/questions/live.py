"""Live pages at no cost when nothing changed: a version per event, kept in the cache.

Every page polls its event every 1.5 s; a room of 1,000 attendees asks for the question list about
670 times a second, and almost every time nothing changed. Every change a page shows (a question
posted, processed or failed, a vote, a moderation, a merge, a flag decided, the event edited) puts
a new random version for the event's code in the cache once its transaction commits. The list
answers with an ETag made of that version (and of who asks, since the list marks their own
questions and votes) and ``Cache-Control: no-cache``: the browser asks again with
``If-None-Match``, and an unchanged event is a 304 read from the cache alone, with no query.

The version is bumped after commit and read before the list is, so an answer is never older than
its ETag says: at worst newer, which costs one more full answer, never a missed change.

Votes are coalesced: a room of 1,000 votes a hundred times a second or more, and a version per
vote would make every poll a full answer read for that poll alone. The first vote after a quiet
``LIVE_VOTE_WINDOW_S`` bumps at once; later ones only count themselves (``votes``), and the first
poll that finds uncounted votes once the window has passed bumps for them. A poll records which
count its bump covered (``seen``) from a read made before the bump, so a vote arriving meanwhile
stays uncounted and gets the next bump: no vote is hidden for good, and others see it within the
window and a poll interval. A version
the cache lost (evicted, restarted) is replaced by a new one: again one more full answer. Several
web processes need a shared cache (``REDIS_URL`` or ``CACHE_URL``: settings.py), as the rate
limits do; deploy/gunicorn.conf.py starts one process without one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
# A version lives this long after its last change: then one more full answer per page, and the
# cache never grows with codes polled once (any well-formed code gets a version when polled).
TTL_S = 3600


def _key(code: str, part: str = "") -> str:
    return f"live{part}:{code}"


def version(code: str) -> str | None:
    """The event's current version (a new one when the cache has none); None when the cache is down."""
    keys = {name: _key(code, name) for name in ("", "-votes", "-seen", "-bumped")}
    try:
        found = cache.get_many(list(keys.values()))
        current = found.get(keys[""])
        votes, seen, bumped = (found.get(keys[name]) for name in ("-votes", "-seen", "-bumped"))
        if votes is not None and votes != seen and time.time() - (bumped or 0.0) >= _window():
            # Uncounted votes, and the window since the last bump has passed: a version for them.
            return _bump(code, seen=votes)
        if current is None:
            cache.add(keys[""], secrets.token_hex(6), timeout=TTL_S)
            current = cache.get(keys[""])
    except RedisError as exc:
        log.warning("live version of %s unreadable, answering in full: %s", code, exc)
        return None
    return current


def changed(code: str) -> None:
    """The event's pages must refetch: a new version once the current transaction commits."""
    transaction.on_commit(lambda: _bump(code))


def voted(code: str) -> None:
    """A vote changed the event's list: counted after commit, shown by a bump at most once a window."""
    transaction.on_commit(lambda: _vote(code))


def _window() -> float:
    from django.conf import settings

    return settings.LIVE_VOTE_WINDOW_S


def _vote(code: str) -> None:
    try:
        cache.add(_key(code, "-votes"), 0, timeout=TTL_S)
        votes = cache.incr(_key(code, "-votes"))
        if time.time() - (cache.get(_key(code, "-bumped")) or 0.0) >= _window():
            _bump(code, seen=votes)  # the first vote of a quiet spell shows at once
    except (RedisError, ValueError) as exc:  # ValueError: the counter expired between add and incr
        log.warning("vote on %s not counted for the live version, bumping: %s", code, exc)
        _bump(code)


def _bump(code: str, seen: int | None = None) -> str | None:
    """A new version (returned); ``seen``: the vote count it covers, read before it was made."""
    new = secrets.token_hex(6)
    values = {_key(code): new, _key(code, "-bumped"): time.time()}
    if seen is not None:
        values[_key(code, "-seen")] = seen
    try:
        cache.set_many(values, timeout=TTL_S)
    except RedisError as exc:
        # Polls read no version while the cache is down (full answers), and a lost bump is
        # corrected by the next change; log it.
        log.warning("live version of %s not bumped: %s", code, exc)
        return None
    return new


def etag(code: str, *parts: str | None) -> str | None:
    """An ETag for an answer about the event that also depends on ``parts`` (who asks, the sort)."""
    return tag(version(code), *parts)


def tag(current: str | None, *parts: str | None) -> str | None:
    """The ETag of an answer read at version ``current`` (None: the cache is down, no ETag)."""
    if current is None:
        return None
    who = hashlib.blake2s("\x00".join(p or "" for p in parts).encode(), digest_size=6).hexdigest()
    return f"{current}.{who}"


def connect() -> None:
    """What changes outside the actions (the admin edits an event, deletes a question) bumps too."""
    from django.db.models.signals import post_delete, post_save

    from webapp.events.models import Event
    from webapp.questions.models import Question

    post_save.connect(_event_saved, sender=Event, dispatch_uid="live-event-saved")
    post_delete.connect(_question_deleted, sender=Question, dispatch_uid="live-question-deleted")


def _event_saved(sender, instance, **kwargs) -> None:
    changed(instance.code)


def _question_deleted(sender, instance, **kwargs) -> None:
    code = type(instance.event).objects.filter(pk=instance.event_id).values_list("code", flat=True).first()
    if code:
        changed(code)
