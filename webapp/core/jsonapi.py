"""The JSON endpoints' edges: one body parser and one error shape. Bad input is a 400 naming the
field, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, JsonResponse

from webapp.core.text import RAW_CHARS_PER_CHAR, InvalidText, clean_lines, clean_text
from webapp.events.models import Event

# No field takes a number this long; Python refuses to convert past 4,300 digits (a ValueError).
MAX_INT_DIGITS = 100


class ApiError(Exception):
    """``retry_after`` (seconds, for a 429) goes into the body and the Retry-After header."""

    def __init__(self, status: int, message: str, field: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.retry_after = status, message, field, retry_after

    def response(self) -> JsonResponse:
        body = {"error": self.message} | ({"field": self.field} if self.field else {})
        if self.retry_after is not None:
            body["retry_after"] = self.retry_after
        response = JsonResponse(body, status=self.status)
        if self.retry_after is not None:
            response["Retry-After"] = str(self.retry_after)
        return response


def api(view: Callable[..., tuple[dict[str, Any], int]]) -> Callable[..., JsonResponse]:
    """The view returns ``(data, status)``; an ApiError becomes its answer."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
        try:
            data, status = view(request, *args, **kwargs)
        except ApiError as exc:
            return exc.response()
        return JsonResponse(data, status=status)

    return wrapper


def event_by_code(code: str) -> Event:
    """The event of a join code in the path, or a 404."""
    event = Event.objects.by_code(code)
    if event is None:
        raise ApiError(404, "no event with that code")
    return event


def require_moderator(request: HttpRequest, event: Event) -> None:
    if not event.is_moderator(request.user):
        raise ApiError(403, "you do not moderate this event")


def body_json(request: HttpRequest) -> dict[str, Any]:
    """The request body as a JSON object; an empty body is ``{}``."""
    try:
        data = json.loads(request.body or b"{}", parse_int=_int)
    except RecursionError:
        raise ApiError(400, "body: nested too deeply", "body") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        raise ApiError(400, "body: not valid JSON", "body") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body: must be a JSON object", "body")
    return data


def _int(digits: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise ApiError(400, f"body: a number of more than {MAX_INT_DIGITS} digits", "body")
    return int(digits)


def text_field(data: dict[str, Any], name: str, max_chars: int, required: bool, lines: bool = False) -> str:
    """``data[name]`` as cleaned text (webapp/core/text.py), at most ``max_chars`` once cleaned;
    with ``lines``, its line breaks stay."""
    value = data.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: must be a string", name)
    if len(value) > max_chars * RAW_CHARS_PER_CHAR:
        raise ApiError(400, f"{name}: at most {max_chars} characters", name)
    try:
        value = clean_lines(value) if lines else clean_text(value)
    except InvalidText as exc:
        raise ApiError(400, f"{name}: {exc}", name) from None
    if required and not value:
        raise ApiError(400, f"{name}: required", name)
    if len(value) > max_chars:
        raise ApiError(400, f"{name}: at most {max_chars} characters", name)
    return value
