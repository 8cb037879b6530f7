"""The JSON API: the same data as the pages. Bad input is a 400 naming the field, never a 500.

Reading an event's questions takes its join code (in the path) or having joined it on the event page
(the attendee cookie records the events joined); voting and asking take an attendee identity, which
only the event page gives (webapp/questions/attendees.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import condition, require_GET, require_http_methods, require_POST

from embeddings.errors import FunctionError
from webapp.core import jsonapi, ratelimit
from webapp.core.inference import functions
from webapp.core.jsonapi import ApiError, body_json, event_by_code, require_moderator, text_field
from webapp.events.codes import is_valid, normalise
from webapp.questions import actions, listing, live
from webapp.questions.attendees import Attendee, attendee_id, current
from webapp.questions.models import MAX_ANSWER_CHARS, MAX_NAME_CHARS, MAX_QUESTION_CHARS, Flag, Question, Vote
from webapp.questions.serialize import flag_json, flags_json, question_json
from webapp.questions.similarity import find_matches

NO_IDENTITY = "no attendee identity: open the event page first (GET /e/<code>/ sets the attendee cookie)"


def api(view: Callable[..., tuple[dict[str, Any], int]]) -> Callable[..., JsonResponse]:
    """webapp.core.jsonapi.api, and an ActionError becomes a 409 (or a 400 when it names a field)."""

    @jsonapi.api
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> tuple[dict[str, Any], int]:
        try:
            return view(request, *args, **kwargs)
        except actions.ActionError as exc:
            raise ApiError(409 if exc.field is None else 400, exc.message, exc.field) from None

    return wrapper


def get_question(pk: int) -> Question:
    question = Question.objects.select_related("event").filter(pk=pk).first()
    if question is None:
        raise ApiError(404, "no such question")
    return question


def require_attendee(request: HttpRequest) -> Attendee:
    """The attendee behind a vote or a post; none, or a cookie that fails its signature, is a 403."""
    attendee = current(request)
    if attendee is None:
        raise ApiError(403, NO_IDENTITY)
    return attendee


def limit(request: HttpRequest, scope: str, per_attendee: int, per_address: int) -> None:
    """Fixed-window limits per attendee and per address (a new cookie does not reset the second).

    A request without an identity counts under its address for both.
    """
    window = 60
    address = ratelimit.client_address(request)
    key = attendee_id(request) or "address:" + address
    if not ratelimit.allow(scope, key, per_attendee, window) or not ratelimit.allow(
        scope + ":ip", address, per_address, window
    ):
        # Both windows are the same fixed minute of the limiter's clock: it ends for both at once.
        retry_after = window - int(ratelimit.time.time()) % window
        raise ApiError(429, f"too many requests: try again in {retry_after} s", retry_after=retry_after)


def can_see(request: HttpRequest, question: Question) -> bool:
    """Moderators see their events' questions; an attendee their own, and the visible questions of
    the events they joined. A question they may not see answers 404, as an unknown one does."""
    if question.event.is_moderator(request.user):
        return True
    attendee = current(request)
    if attendee is None:
        return False
    if question.attendee == attendee.id:
        return True
    return question.status == Question.Status.VISIBLE and attendee.joined(question.event.code)


def list_etag(request: HttpRequest, code: str) -> str | None:
    """The list's ETag: the event's live version, who asks and the sort (webapp/questions/live.py)."""
    code = normalise(code)
    if request.method != "GET" or not is_valid(code):
        return None
    # The view reads the list at this same version (one cache read a poll, and the answer matches its ETag).
    request.live_version = live.version(code)
    return live.tag(request.live_version, attendee_id(request), request.GET.get("sort", "votes"))


def no_cache(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    """Browsers keep the answer but ask again each time, sending its ETag (a 304 when unchanged)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        response = view(request, *args, **kwargs)
        if request.method == "GET":
            patch_cache_control(response, private=True, no_cache=True)
            if response.status_code not in (200, 304):
                del response["ETag"]  # an error is not a state to revalidate against
        return response

    return wrapper


@require_http_methods(["GET", "POST"])
@no_cache
@condition(etag_func=list_etag)
@api
def event_questions(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    if request.method == "POST":
        event = event_by_code(code)
        me = require_attendee(request)
        data = body_json(request)
        text = text_field(data, "text", MAX_QUESTION_CHARS, required=True)
        name = text_field(data, "name", MAX_NAME_CHARS, required=False)
        if not name and not event.anonymous_allowed:
            raise ApiError(400, "name: this event asks for a name", "name")
        limit(request, "post", settings.POSTS_PER_MINUTE, settings.POSTS_PER_MINUTE_PER_ADDRESS)
        question = actions.submit_question(event, text, me.id, name)
        question.refresh_from_db()
        return question_json(question, me.id), 201
    sort = request.GET.get("sort", "votes")
    if sort not in ("votes", "time"):
        raise ApiError(400, "sort: votes or time", "sort")
    # The event, its questions in order and their JSON come from this process's snapshot of the
    # event's version: no query unless the event changed (webapp/questions/listing.py).
    data = listing.listing(normalise(code), sort, attendee_id(request), getattr(request, "live_version", None))
    if data is None:
        raise ApiError(404, "no event with that code")
    return data, 200


@require_http_methods(["GET", "PATCH", "DELETE"])
@api
def question_detail(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    """A question; its asker may PATCH its ``text`` or DELETE (withdraw) it for a short time after
    asking (QUESTION_EDIT_WINDOW_S; ``editable_until`` in their copy says until when)."""
    question = get_question(pk)
    if not can_see(request, question):
        raise ApiError(404, "no such question")
    if request.method != "GET":
        return own_change(request, question)
    me = attendee_id(request)
    voted = me is not None and Vote.objects.filter(question=question, attendee=me).exists()
    moderator = question.event.is_moderator(request.user)
    data = question_json(question, me, moderator=moderator, voted=voted)
    data["flags"] = flags_json(question, moderator=moderator)
    return data, 200


def own_change(request: HttpRequest, question: Question) -> tuple[dict[str, Any], int]:
    me = require_attendee(request)
    if question.attendee != me.id:
        raise ApiError(403, "only its asker can change a question")
    if request.method == "PATCH":
        text = text_field(body_json(request), "text", MAX_QUESTION_CHARS, required=True)
        # An edit is processed like a new question: it counts against the same limit.
        limit(request, "post", settings.POSTS_PER_MINUTE, settings.POSTS_PER_MINUTE_PER_ADDRESS)
        question = actions.edit_question(question, me.id, text)
    else:
        question = actions.withdraw_question(question, me.id)
    question.refresh_from_db()
    return question_json(question, me.id), 200


@require_POST
@api
def question_answer(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    """A moderator writes the answer: ``{"text": "..."}`` (empty removes it); it marks the question answered."""
    question = get_question(pk)
    require_moderator(request, question.event)
    text = text_field(body_json(request), "text", MAX_ANSWER_CHARS, required=False, lines=True)
    actions.write_answer(question, text, request.user)
    question.refresh_from_db()
    return question_json(question, moderator=True), 200


@require_POST
@api
def question_vote(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    me = require_attendee(request)
    question = get_question(pk)
    # Only the events joined on their page: a vote takes no join code.
    if not (me.joined(question.event.code) and can_see(request, question)):
        raise ApiError(404, "no such question")
    limit(request, "vote", settings.VOTES_PER_MINUTE, settings.VOTES_PER_MINUTE * 10)
    added = actions.vote(question, me.id)
    question.refresh_from_db(fields=["vote_count"])
    return {"id": question.pk, "votes": question.vote_count, "voted": True, "added": added}, 200


@require_GET
@api
def event_similar(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    """ "Already asked?" while typing: the event's public questions close to ``q``."""
    event = event_by_code(code)
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


MAX_FLAGS = 500
# What flag_json reads: one query for a whole list (a merged question shows the one it joined),
# without the vectors (1.5 KB a question) and timings it never shows.
FLAG_RELATED = ("question__merged_into", "matched__merged_into", "decided_by")
FLAG_DEFERRED = tuple(
    f"{side}__{field}"
    for side in ("question", "matched", "question__merged_into", "matched__merged_into")
    for field in ("vector", "timings")
)


def flags_etag(request: HttpRequest, code: str) -> str | None:
    """The flag list's ETag: the event's live version, who asks and the filters."""
    code = normalise(code)
    if request.method != "GET" or not is_valid(code) or not request.user.is_authenticated:
        return None
    return live.etag(code, "flags", str(request.user.pk), request.GET.urlencode())


@require_GET
@no_cache
@condition(etag_func=flags_etag)
@api
def event_flags(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    """The event's flags, open ones by default: duplicates before related, closest first.

    ``status`` (open, merged, dismissed), ``kind`` (duplicate, related) and ``q`` (words in either
    question) filter; at most 500 come back, ``total`` says how many matched.
    """
    event = event_by_code(code)
    require_moderator(request, event)
    status = request.GET.get("status", "open")
    if status not in Flag.Status.values:
        raise ApiError(400, f"status: one of {', '.join(Flag.Status.values)}", "status")
    kind = request.GET.get("kind", "")
    if kind and kind not in Flag.Kind.values:
        raise ApiError(400, f"kind: one of {', '.join(Flag.Kind.values)}, or empty for both", "kind")
    q = text_field({"q": request.GET.get("q", "")}, "q", MAX_QUESTION_CHARS, required=False)
    flags = Flag.objects.filter(question__event=event, status=status)
    if status == Flag.Status.OPEN:
        # A merged or hidden question is no longer the moderators' to decide on.
        flags = flags.exclude(question__status__in=[Question.Status.MERGED, Question.Status.HIDDEN]).exclude(
            matched__status=Question.Status.HIDDEN
        )
        order = ("kind", "-similarity", "pk")  # "duplicate" sorts before "related"
    else:
        order = ("-decided_at", "-pk")
    if kind:
        flags = flags.filter(kind=kind)
    if q:
        flags = flags.filter(Q(question__text__icontains=q) | Q(matched__text__icontains=q))
    rows = list(flags.select_related(*FLAG_RELATED).defer(*FLAG_DEFERRED).order_by(*order)[:MAX_FLAGS])
    total = len(rows) if len(rows) < MAX_FLAGS else flags.count()
    return {"flags": [flag_json(f) for f in rows], "total": total}, 200


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
    flag = Flag.objects.select_related(*FLAG_RELATED).get(pk=pk)
    return flag_json(flag), 200


@require_POST
@api
def flags_dismiss(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    """Dismiss several open flags of the event: ``{"ids": [...]}``, at most 500.

    Ids that are not open flags of this event (another event's, decided, unknown) are skipped.
    """
    event = event_by_code(code)
    require_moderator(request, event)
    ids = body_json(request).get("ids")
    if not isinstance(ids, list) or not ids:
        raise ApiError(400, "ids: a non-empty list of flag ids", "ids")
    if len(ids) > actions.MAX_BULK_FLAGS:
        raise ApiError(400, f"ids: at most {actions.MAX_BULK_FLAGS}", "ids")
    if not all(type(i) is int and 0 < i < 2**63 for i in ids):
        raise ApiError(400, "ids: positive integers only", "ids")
    wanted = list(dict.fromkeys(ids))
    dismissed = actions.dismiss_flags(event, wanted, request.user)
    done = set(dismissed)
    return {"dismissed": dismissed, "skipped": [i for i in wanted if i not in done]}, 200


@require_POST
@api
def question_moderate(request: HttpRequest, pk: int) -> tuple[dict[str, Any], int]:
    question = get_question(pk)
    require_moderator(request, question.event)
    data = body_json(request)
    action = data.get("action")
    if not isinstance(action, str):
        raise ApiError(400, "action: required", "action")
    actions.moderate(question, action, request.user)
    question.refresh_from_db()
    return question_json(question, moderator=True), 200


@require_GET
@api
def event_moderation_queue(request: HttpRequest, code: str) -> tuple[dict[str, Any], int]:
    """Everything a moderator acts on besides flags: awaiting approval, failed processing."""
    event = event_by_code(code)
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
