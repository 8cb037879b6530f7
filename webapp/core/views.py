from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from embeddings.cards import available, load_card
from embeddings.errors import FunctionError
from webapp.core import ratelimit
from webapp.core.forms import CompareForm
from webapp.core.inference import functions, model_thresholds
from webapp.core.jsonapi import ApiError, api, body_json
from webapp.events.models import Event
from webapp.questions.attendees import current

COMPARE_LIMIT_PER_MINUTE = 30
RECENT_EVENTS = 6


def compare(a: str, b: str) -> dict[str, Any]:
    """Similarity, verdict and sentiment of two questions, through the functions."""
    calls = functions()
    vectors = calls.embed([a, b])
    similarity = float(vectors[0] @ vectors[1])
    moods = calls.sentiment([a, b])
    return {
        "similarity": round(similarity, 4),
        "kind": model_thresholds().classify(similarity),
        "sentiment": [{"label": m.label, "scores": m.scores} for m in moods],
    }


@cache
def _models() -> list[dict[str, Any]]:
    """The shipped models' cards, read once per process (they change only with a deploy)."""
    cards = [load_card(name) for name in available()]
    return [
        {
            "name": c.name,
            "task": c.task,
            "role": c.raw.get("role", ""),
            "size_mb": c.raw.get("size_mb"),
            "metrics": c.raw.get("metrics", {}),
            "thresholds": c.thresholds,
        }
        for c in cards
    ]


def _join(code: str) -> tuple[Event | None, str]:
    """The event behind a typed join code, or the message to show instead."""
    event = Event.objects.by_code(code)
    return event, "" if event else "No event has that join code: check it and try again."


def _recent_events(request: HttpRequest) -> list[Event]:
    """The events this browser joined (the attendee cookie records them), newest first."""
    attendee = current(request)
    if attendee is None:
        return []
    by_code = {e.code: e for e in Event.objects.filter(code__in=attendee.events)}
    return [by_code[c] for c in attendee.events if c in by_code][:RECENT_EVENTS]


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """For attendees: join an event by code, or go back to one joined before."""
    join_code, join_error = request.GET.get("code"), ""
    if join_code is not None:
        event, join_error = _join(join_code)
        if event is not None:
            return redirect("pages:attendee", code=event.code)
    context = {"join_code": join_code or "", "join_error": join_error, "recent": _recent_events(request)}
    return render(request, "core/home.html", context)


@require_http_methods(["GET", "POST"])
def models(request: HttpRequest) -> HttpResponse:
    """For developers: two questions through the functions, and the shipped models."""
    form = CompareForm(request.POST or None)
    result, status = None, 200
    if request.method == "POST":
        if not ratelimit.allow("compare", ratelimit.client_address(request), COMPARE_LIMIT_PER_MINUTE):
            status = 429
            form.add_error(None, "Too many requests: try again in a minute.")
        elif form.is_valid():
            try:
                result = compare(form.cleaned_data["a"], form.cleaned_data["b"])
            except FunctionError as exc:
                status = 503 if exc.retryable else 400
                form.add_error(None, f"The functions could not answer: {exc.message}")
        else:
            status = 400
    context = {"form": form, "result": result, "models": _models(), "backend": settings.INFERENCE_BACKEND}
    return render(request, "core/models.html", context, status=status)


@require_http_methods(["POST"])
@api
def api_compare(request: HttpRequest) -> tuple[dict[str, Any], int]:
    """``POST {"a": "...", "b": "..."}`` -> similarity, duplicate/related/unrelated, sentiment."""
    if not ratelimit.allow("compare", ratelimit.client_address(request), COMPARE_LIMIT_PER_MINUTE):
        raise ApiError(429, "too many requests")
    body = body_json(request)
    for field in ("a", "b"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise ApiError(400, f"{field}: must be a string", field)
    form = CompareForm(body)
    if not form.is_valid():
        field, errors = next(iter(form.errors.items()))
        raise ApiError(400, f"{field}: {errors[0]}", field)
    try:
        return compare(form.cleaned_data["a"], form.cleaned_data["b"]), 200
    except FunctionError as exc:
        raise ApiError(503 if exc.retryable else 400, exc.message) from None


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor, "models": available()})
