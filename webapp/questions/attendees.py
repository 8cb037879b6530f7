"""Attendees have no account: a signed cookie carries a random id and the events they joined.

Only the event page issues an id, at most ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS a minute to one
client address: an id is what makes a vote or a question count once, so minting them freely would
let one person vote as many. The API never issues one, and refuses a vote or a post without a valid
one (webapp/questions/api.py).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse

from webapp.core import ratelimit

COOKIE = "attendee"
SALT = "asktwice.attendee"
MAX_AGE = 60 * 60 * 24 * 365
MAX_EVENTS = 20  # the most recently joined events, newest first
# The cookie's value: the id, then the join codes (neither has a dot).
SEP = "."


@dataclass(frozen=True)
class Attendee:
    id: str
    events: tuple[str, ...] = ()

    def joined(self, code: str) -> bool:
        return code in self.events


def current(request: HttpRequest) -> Attendee | None:
    """The request's attendee, from the signed cookie; None when it has none or a bad one."""
    if not hasattr(request, "_attendee"):
        try:
            value = request.get_signed_cookie(COOKIE, salt=SALT, max_age=MAX_AGE)
        except (KeyError, signing.BadSignature):
            value = ""
        ident, *events = value.split(SEP)
        request._attendee = Attendee(ident, tuple(events)) if ident else None
    return request._attendee


def attendee_id(request: HttpRequest) -> str | None:
    attendee = current(request)
    return attendee.id if attendee else None


def join(request: HttpRequest, code: str) -> Attendee | None:
    """The event page: record the event in the attendee's cookie, with a new id when they have none.

    None when the client's address had its share of new ids this minute (the page still renders).
    ``remember`` sets the cookie on the response.
    """
    attendee = current(request)
    if attendee is None:
        if not ratelimit.allow(
            "attendee-id", ratelimit.client_address(request), settings.ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS
        ):
            return None
        attendee = Attendee(secrets.token_urlsafe(16))
    if attendee.events[:1] != (code,):
        others = tuple(c for c in attendee.events if c != code)
        attendee = Attendee(attendee.id, (code, *others)[:MAX_EVENTS])
        request._attendee, request._attendee_changed = attendee, True
    return attendee


def remember(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Set the cookie when ``join`` changed it."""
    if getattr(request, "_attendee_changed", False):
        value = SEP.join([request._attendee.id, *request._attendee.events])
        response.set_signed_cookie(
            COOKIE,
            value,
            salt=SALT,
            max_age=MAX_AGE,
            httponly=True,
            samesite="Lax",
            secure=settings.SESSION_COOKIE_SECURE,
        )
    return response
