"""Attendees have no account: a signed cookie carries a random id."""

from __future__ import annotations

import secrets

from django.core import signing
from django.http import HttpRequest, HttpResponse

COOKIE = "attendee"
SALT = "asktwice.attendee"
MAX_AGE = 60 * 60 * 24 * 365


def attendee_id(request: HttpRequest) -> str:
    """The request's attendee id; a new one (remembered on the request) when it has none."""
    cached = getattr(request, "_attendee_id", None)
    if cached:
        return cached
    try:
        value = request.get_signed_cookie(COOKIE, salt=SALT, max_age=MAX_AGE)
    except (KeyError, signing.BadSignature):
        value = None
    request._attendee_id = value or secrets.token_urlsafe(16)
    request._attendee_new = value is None
    return request._attendee_id


def remember(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """Set the cookie when this request created the id."""
    if getattr(request, "_attendee_new", False):
        response.set_signed_cookie(
            COOKIE, request._attendee_id, salt=SALT, max_age=MAX_AGE, httponly=True, samesite="Lax"
        )
    return response
