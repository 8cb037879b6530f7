"""The organisers' dashboard page, its JSON, and the CSV export; moderators of the event only."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.core.jsonapi import api, event_by_code, require_moderator
from webapp.dashboard import stats
from webapp.questions.export import write_csv
from webapp.questions.views import LOGIN_URL, get_moderated_event

REFRESH_MS = 5000


@require_GET
@login_required(login_url=LOGIN_URL)
def dashboard_page(request: HttpRequest, code: str) -> HttpResponse:
    event = get_moderated_event(request, code)
    context = {
        "event": event,
        "page_data": {
            "code": event.code,
            "refreshMs": REFRESH_MS,
            "urls": {"dashboard": reverse("pages:api-dashboard", args=[event.code])},
        },
    }
    return render(request, "dashboard/dashboard.html", context)


@require_GET
@api
def dashboard_json(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    event = event_by_code(code)
    require_moderator(request, event)
    return stats.dashboard(event), 200


@require_GET
@login_required(login_url=LOGIN_URL)
def export_csv(request: HttpRequest, code: str) -> HttpResponse:
    event = get_moderated_event(request, code)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="asktwice-{event.code.lower()}.csv"'
    write_csv(event, response)
    return response
