"""The signed-in user's events, and an event's moderators (its owner adds and removes them)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from webapp.events import actions
from webapp.events.forms import ModeratorForm
from webapp.events.models import Event

LOGIN_URL = "login"


@require_GET
@login_required
def mine(request: HttpRequest) -> HttpResponse:
    """The events the user moderates (staff moderate every event), newest first."""
    events = Event.objects.moderated_by(request.user)
    return render(request, "events/mine.html", {"events": events})


def get_owned_event(request: HttpRequest, code: str) -> Event:
    """The event, if the signed-in user created it (staff own every event); 404 or 403 otherwise."""
    event = Event.objects.by_code(code)
    if event is None:
        raise Http404("No event with that code.")
    if not event.is_owner(request.user):
        raise PermissionDenied("Only the event's owner changes its moderators.")
    return event


# never_cache: the answer to "create" shows a password once; no cache may keep it.
@never_cache
@require_http_methods(["GET", "POST"])
@login_required(login_url=LOGIN_URL)
def moderators(request: HttpRequest, code: str) -> HttpResponse:
    """The event's moderators; its owner adds an existing user, creates one (password shown once) or
    removes one. A refused change answers 400, its error under the form it came from."""
    event = get_owned_event(request, code)
    forms = {action: ModeratorForm(initial={"action": action}) for action, _ in ModeratorForm.ACTIONS}
    added, password, removed = None, None, None
    if request.method == "POST":
        form = ModeratorForm(request.POST)
        if form.is_valid():
            action, username = form.cleaned_data["action"], form.cleaned_data["username"]
            try:
                if action == "add":
                    added = actions.add_moderator(event, username)
                elif action == "create":
                    added, password = actions.create_moderator(event, username)
                else:
                    removed = actions.remove_moderator(event, username)
            except ValidationError as exc:
                form.add_error("username", exc)
        if not form.is_valid():
            forms[form.data.get("action") if form.data.get("action") in forms else "add"] = form
    context = {
        "event": event,
        "can_moderate": event.is_moderator(request.user),
        "moderators": event.moderators.order_by("username"),
        "forms": forms,
        "added": added,
        "password": password,
        "removed": removed,
    }
    changed = added or removed
    return render(request, "events/moderators.html", context, status=200 if changed or request.method == "GET" else 400)
