"""The JSON API: the same data as the pages. Bad input is a 400 naming the field, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embeddings.errors import FunctionError
from webapp.core import ratelimit
from webapp.core.inference import functions
from webapp.events.codes import normalise
from webapp.events.models import Event
from webapp.questions import actions
from webapp.questions.attendees import attendee_id, remember
from webapp.questions.models import MAX_NAME_CHARS, MAX_QUESTION_CHARS, Flag, Question, Vote
from webapp.questions.serialize import flag_json, flags_json, question_json
from webapp.questions.similarity import find_matches


class ApiError(Exception):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


def api(view: Callable[..., Any]) -> Callable[..., JsonResponse]:
    """JSON in and out; ApiError and ActionError become 4xx answers; sets the attendee cookie."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            data, status = view(request, *args, **kwargs)
            response = JsonResponse(data, status=status)
        except ApiError as exc:
            body = {"error": exc.message} | ({"field": exc.field} if exc.field else {})
            response = JsonResponse(body, status=exc.status)
        except actions.ActionError as exc:
            body = {"error": exc.message} | ({"field": exc.field} if exc.field else {})
            response = JsonResponse(body, status=409 if exc.field is None else 400)
        return remember(request, response)

    return wrapper


def body_json(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "body: not valid JSON", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body: must be a JSON object", "body")
    return data


def text_field(data: dict[str, Any], name: str, max_chars: int, required: bool) -> str:
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: must be a string", name)
    value = " ".join(value.split())
    if required and not value:
        raise ApiError(400, f"{name}: required", name)
    if len(value) > max_chars:
        raise ApiError(400, f"{name}: at most {max_chars} characters", name)
    if any(ord(c) < 32 for c in value):
        raise ApiError(400, f"{name}: control characters are not allowed", name)
    return value


def get_event(code: str) -> Event:
    event = Event.objects.filter(code=normalise(code)).first()
    if event is None:
        raise ApiError(404, "no event with that code")
    return event


def get_question(pk: int) -> Question:
    question = Question.objects.select_related("event").filter(pk=pk).first()
    if question is None:
        raise ApiError(404, "no such question")
    return question


def require_moderator(request: HttpRequest, event: Event) -> None:
    if not event.is_moderator(request.user):
        raise ApiError(403, "you do not moderate this event")


def limit(request: HttpRequest, scope: str, per_attendee: int, per_address: int) -> None:
    """Fixed-window limits per attendee and per address (a new cookie does not reset the second)."""
    if not ratelimit.allow(scope, attendee_id(request), per_attendee) or not ratelimit.allow(
        scope + ":ip", ratelimit.client_address(request), per_address
    ):
        raise ApiError(429, "too many requests: slow down")


def can_see(request: HttpRequest, question: Question) -> bool:
    if question.status == Question.Status.VISIBLE:
        return True
    return question.attendee == attendee_id(request) or question.event.is_moderator(request.user)


@require_http_methods(["GET", "POST"])
@api
def event_questions(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    event = get_event(code)
    me = attendee_id(request)
    if request.method == "POST":
        data = body_json(request)
        text = text_field(data, "text", MAX_QUESTION_CHARS, required=True)
        name = text_field(data, "name", MAX_NAME_CHARS, required=False)
        if not name and not event.anonymous_allowed:
            raise ApiError(400, "name: this event asks for a name", "name")
        limit(request, "post", settings.POSTS_PER_MINUTE, settings.POSTS_PER_MINUTE_PER_ADDRESS)
        question = actions.submit_question(event, text, me, name)
        question.refresh_from_db()
        return question_json(question, me), 201
    sort = request.GET.get("sort", "votes")
    if sort not in ("votes", "time"):
        raise ApiError(400, "sort: votes or time", "sort")
    public = Question.objects.for_event(event).public()
    public = public.by_votes() if sort == "votes" else public.by_time()
    public_rows = list(public[:500])
    mine = Question.objects.for_event(event).filter(attendee=me).exclude(status=Question.Status.VISIBLE)
    mine_rows = list(mine.order_by("-created_at")[:50])
    # Race: a question merged or hidden between the two queries would be in both lists (each
    # statement reads its own snapshot on PostgreSQL), and the page would show it twice. The
    # second query is the newer state.
    newer = {q.pk for q in mine_rows}
    voted = set(Vote.objects.filter(question__event=event, attendee=me).values_list("question_id", flat=True))
    return {
        "event": {"code": event.code, "title": event.title, "open": event.is_open},
        "questions": [question_json(q, me, voted=q.pk in voted) for q in public_rows if q.pk not in newer],
        "mine": [question_json(q, me) for q in mine_rows],
    }, 200


@require_GET
@api
def question_detail(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    question = get_question(pk)
    if not can_see(request, question):
        raise ApiError(404, "no such question")
    me = attendee_id(request)
    voted = Vote.objects.filter(question=question, attendee=me).exists()
    data = question_json(question, me, moderator=question.event.is_moderator(request.user), voted=voted)
    data["flags"] = flags_json(question)
    return data, 200


@require_POST
@api
def question_vote(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    question = get_question(pk)
    if not can_see(request, question):
        raise ApiError(404, "no such question")
    limit(request, "vote", settings.VOTES_PER_MINUTE, settings.VOTES_PER_MINUTE * 10)
    added = actions.vote(question, attendee_id(request))
    question.refresh_from_db(fields=["vote_count"])
    return {"id": question.pk, "votes": question.vote_count, "voted": True, "added": added}, 200


@require_GET
@api
def event_similar(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    """ "Already asked?" while typing: the event's public questions close to ``q``."""
    event = get_event(code)
    q = text_field({"q": request.GET.get("q", "")}, "q", MAX_QUESTION_CHARS, required=True)
    limit(request, "similar", settings.SIMILAR_PER_MINUTE, settings.SIMILAR_PER_MINUTE * 10)
    try:
        vector = functions().embed([q])[0]
    except FunctionError as exc:
        raise ApiError(503 if exc.retryable else 400, f"suggestions unavailable: {exc.message}") from None
    matches = find_matches(event, vector, limit=3, public_only=True)
    return {
        "results": [
            {
                "id": m.question.pk,
                "text": m.question.text,
                "similarity": m.similarity,
                "kind": m.kind,
                "votes": m.question.vote_count,
            }
            for m in matches
        ]
    }, 200


@require_GET
@api
def event_flags(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    event = get_event(code)
    require_moderator(request, event)
    status = request.GET.get("status", "open")
    if status not in Flag.Status.values:
        raise ApiError(400, f"status: one of {', '.join(Flag.Status.values)}", "status")
    flags = (
        Flag.objects.filter(question__event=event, status=status)
        .exclude(question__status__in=[Question.Status.MERGED, Question.Status.HIDDEN])
        .exclude(matched__status=Question.Status.HIDDEN)
        .select_related("question", "matched")
        .order_by("-created_at")[:200]
    )
    return {"flags": [flag_json(f) for f in flags]}, 200


@require_POST
@api
def flag_decide(request: HttpRequest, pk: int, verdict: str) -> tuple[dict[str, Any], int]:
    flag = Flag.objects.select_related("question__event", "matched").filter(pk=pk).first()
    if flag is None:
        raise ApiError(404, "no such flag")
    require_moderator(request, flag.question.event)
    if verdict == "merge":
        actions.merge_flag(flag, request.user)
    else:
        actions.dismiss_flag(flag, request.user)
    flag.refresh_from_db()
    return flag_json(flag), 200


@require_POST
@api
def question_moderate(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    question = get_question(pk)
    require_moderator(request, question.event)
    data = body_json(request)
    action = data.get("action")
    if not isinstance(action, str):
        raise ApiError(400, "action: required", "action")
    actions.moderate(question, action)
    question.refresh_from_db()
    return question_json(question, moderator=True), 200


@require_GET
@api
def event_moderation_queue(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    """Everything a moderator acts on besides flags: awaiting approval, failed processing."""
    event = get_event(code)
    require_moderator(request, event)
    base = Question.objects.for_event(event)
    return {
        "awaiting_approval": [
            question_json(q, moderator=True)
            for q in base.filter(status=Question.Status.AWAITING_APPROVAL).order_by("created_at")[:200]
        ],
        "failed": [question_json(q, moderator=True) for q in base.filter(state=Question.State.FAILED)[:200]],
        "hidden": [question_json(q, moderator=True) for q in base.filter(status=Question.Status.HIDDEN)[:200]],
    }, 200
