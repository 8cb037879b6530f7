"""The signed-in user's events: where a moderator lands after signing in."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.events.models import Event


@require_GET
@login_required
def mine(request: HttpRequest) -> HttpResponse:
    """The events the user moderates (staff moderate every event), newest first."""
    events = Event.objects.moderated_by(request.user)
    return render(request, "events/mine.html", {"events": events})
