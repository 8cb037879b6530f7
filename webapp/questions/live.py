"""Live pages at no cost when nothing changed: a version per event, kept in the cache.

Every page polls its event every 1.5 s; a room of 1,000 attendees asks for the question list about
670 times a second, and almost every time nothing changed. Every change a page shows (a question
posted, processed or failed, a vote, a moderation, a merge, a flag decided, the event edited) puts
a new random version for the event's code in the cache once its transaction commits. The list
answers with an ETag made of that version (and of who asks, since the list marks their own
questions and votes) and ``Cache-Control: no-cache``: the browser asks again with
``If-None-Match``, and an unchanged event is a 304 read from the cache alone, with no query.

The version is bumped after commit and read before the list is, so an answer is never older than
its ETag says: at worst newer, which costs one more full answer, never a missed change. A version
the cache lost (evicted, restarted) is replaced by a new one: again one more full answer. Several
web processes need a shared cache (``REDIS_URL`` or ``CACHE_URL``: settings.py), as the rate
limits do; deploy/gunicorn.conf.py starts one process without one.
"""

from __future__ import annotations

import hashlib
import logging
import secrets

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
# A version lives this long after its last change: then one more full answer per page, and the
# cache never grows with codes polled once (any well-formed code gets a version when polled).
TTL_S = 3600


def _key(code: str) -> str:
    return f"live:{code}"


def version(code: str) -> str | None:
    """The event's current version (a new one when the cache has none); None when the cache is down."""
    try:
        current = cache.get(_key(code))
        if current is None:
            cache.add(_key(code), secrets.token_hex(6), timeout=TTL_S)
            current = cache.get(_key(code))
    except RedisError as exc:
        log.warning("live version of %s unreadable, answering in full: %s", code, exc)
        return None
    return current


def changed(code: str) -> None:
    """The event's pages must refetch: a new version once the current transaction commits."""
    transaction.on_commit(lambda: _bump(code))


def _bump(code: str) -> None:
    try:
        cache.set(_key(code), secrets.token_hex(6), timeout=TTL_S)
    except RedisError as exc:
        # Polls read no version while the cache is down (full answers), and a lost bump is
        # corrected by the next change; log it.
        log.warning("live version of %s not bumped: %s", code, exc)


def etag(code: str, *parts: str | None) -> str | None:
    """An ETag for an answer about the event that also depends on ``parts`` (who asks, the sort)."""
    current = version(code)
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
