"""The event pages: attendee, moderator and presenter views, and the join QR code.

The attendee and presenter pages render their first state on the server (readable before the
scripts run, escaped by the templates); every page's script keeps it live by polling the JSON API
in ``api.py``.
"""

from __future__ import annotations

import qrcode
import qrcode.image.svg
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from webapp.events.models import Event
from webapp.questions.attendees import join, remember
from webapp.questions.models import MAX_ANSWER_CHARS, MAX_NAME_CHARS, MAX_QUESTION_CHARS, Question

# Moderators need not be staff: they sign in at /accounts/login/, not the admin's form.
LOGIN_URL = "login"
# The presenter page shows as many of these as its screen has room for (static/questions/present.js).
PRESENTER_MAX = 40


def get_event_or_404(code: str) -> Event:
    """The event with this join code, in any letter case."""
    event = Event.objects.by_code(code)
    if event is None:
        raise Http404("No event with that code.")
    return event


def get_moderated_event(request: HttpRequest, code: str) -> Event:
    """The event, if the signed-in user moderates it (staff moderate every event)."""
    event = get_event_or_404(code)
    if not event.is_moderator(request.user):
        raise PermissionDenied("You do not moderate this event.")
    return event


def _event_urls(event: Event) -> dict[str, str]:
    """The API and page addresses the scripts need, reversed here so no script hard-codes a route."""
    code = event.code
    return {
        "questions": reverse("questions:api-questions", args=[code]),
        "similar": reverse("questions:api-similar", args=[code]),
        "flags": reverse("questions:api-flags", args=[code]),
        "queue": reverse("questions:api-queue", args=[code]),
        # The scripts substitute the id for 0.
        "vote": reverse("questions:api-vote", args=[0]),
        "moderate": reverse("questions:api-moderate", args=[0]),
        "answer": reverse("questions:api-answer", args=[0]),
        "question": reverse("questions:api-question", args=[0]),
        "merge": reverse("questions:api-flag-merge", args=[0]),
        "dismiss": reverse("questions:api-flag-dismiss", args=[0]),
    }


def answered_first(question: Question) -> tuple[bool, str]:
    """The Answered tab's order: the latest answer first (those without a time last)."""
    return question.answered_at is not None, question.answered_at.isoformat() if question.answered_at else ""


@require_GET
def attendee(request: HttpRequest, code: str) -> HttpResponse:
    """The event's page; it gives the attendee their identity (the only place that does) and records
    that they joined this event. Past its address's share of new identities, the page only reads."""
    event = get_event_or_404(code)
    identity = join(request, event.code) is not None
    rows = list(Question.objects.for_event(event).public().by_votes()[:200])
    context = {
        "event": event,
        "now": next((q for q in rows if q.now_answering), None),
        "questions": [q for q in rows if not q.answered],
        "answered": sorted((q for q in rows if q.answered), key=answered_first, reverse=True),
        "identity": identity,
        "max_chars": MAX_QUESTION_CHARS,
        "max_name_chars": MAX_NAME_CHARS,
        "page_data": {
            "code": event.code,
            "open": event.is_open,
            "identity": identity,
            "anonymous": event.anonymous_allowed,
            "maxChars": MAX_QUESTION_CHARS,
            "urls": _event_urls(event),
        },
    }
    return remember(request, render(request, "questions/attendee.html", context))


@require_GET
@login_required(login_url=LOGIN_URL)
def moderate(request: HttpRequest, code: str) -> HttpResponse:
    event = get_moderated_event(request, code)
    context = {
        "event": event,
        "page_data": {"code": event.code, "urls": _event_urls(event), "maxAnswerChars": MAX_ANSWER_CHARS},
    }
    return render(request, "questions/moderate.html", context)


@require_GET
def present(request: HttpRequest, code: str) -> HttpResponse:
    """The projector: the question on stage ("now answering"), the open questions by votes, then the
    answered ones, and the join address, QR code and code. present.js splits the list the same way."""
    event = get_event_or_404(code)
    rows = list(Question.objects.for_event(event).public().by_votes()[:PRESENTER_MAX])
    now = next((q for q in rows if q.now_answering), None)
    join_url = request.build_absolute_uri(reverse("pages:attendee", args=[event.code]))
    # Shown without the scheme and the last slash (what people type); it may wrap only before the code.
    address = join_url.split("://", 1)[-1].rstrip("/")
    context = {
        "event": event,
        "now": now,
        "questions": [q for q in rows if q is not now and not q.answered],
        "answered": [q for q in rows if q.answered],
        "join_url": join_url,
        "join_prefix": address[: -len(event.code)],
        "page_data": {"code": event.code, "max": PRESENTER_MAX, "urls": _event_urls(event)},
    }
    return render(request, "questions/present.html", context)


@require_GET
def qr_svg(request: HttpRequest, code: str) -> HttpResponse:
    """The attendee page's absolute address as a QR code, for the projector."""
    event = get_event_or_404(code)
    url = request.build_absolute_uri(reverse("pages:attendee", args=[event.code]))
    image = qrcode.make(url, image_factory=qrcode.image.svg.SvgPathImage, border=2)
    response = HttpResponse(image.to_string(), content_type="image/svg+xml")
    response["Cache-Control"] = "public, max-age=3600"
    return response


EVENT_SWITCHES = ("is_open", "premoderation", "anonymous_allowed")


@require_POST
@login_required(login_url=LOGIN_URL)
def event_settings(request: HttpRequest, code: str) -> HttpResponse:
    """Moderators open or close the Q&A and switch pre-moderation and anonymous questions."""
    event = get_moderated_event(request, code)
    for name in EVENT_SWITCHES:
        setattr(event, name, request.POST.get(name) == "on")
    event.save(update_fields=list(EVENT_SWITCHES))
    return redirect("pages:moderate", event.code)
