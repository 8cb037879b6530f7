"""Bad input at the functions' edges: every event answered, a bad one with the field it got wrong, never a crash.

The handlers are called in this process for most cases (a few thousand a run); the real host, on
both routes and for all three functions, for a few hundred. An expected answer is worked out from
the event (``expected_field``), so a good event must be served and a bad one named exactly.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embeddings import handlers
from embeddings.cards import available
from tests.test_function_host import start_host, stop_host

FUNCTIONS = ("embed", "sentiment", "verify")
TASKS = {"embed": "embedding", "sentiment": "sentiment", "verify": "verifier"}
ROUTES = ("/2015-03-31/functions/{}/invocations", "/functions/{}")
MODEL_NAMES = [*available(), "", ".", "..", "../models", "a/b", "nope", "\x00", "\ud800", "m" * 300]


def mostly(common: st.SearchStrategy, rare: st.SearchStrategy, rare_in: int = 5) -> st.SearchStrategy:
    """``rare`` one draw in ``rare_in`` (st.one_of picks its branches about evenly)."""
    return st.integers(1, rare_in).flatmap(lambda k: rare if k == 1 else common)


good_texts = st.one_of(
    st.sampled_from(["Will the slides be shared?", "Is room 2 open?", "🙂" * 40, "é" * handlers.MAX_CHARS]),
    st.text(min_size=1, max_size=40).filter(str.strip),
)
bad_texts = st.one_of(
    st.sampled_from(["", "   ", "\x00", "bad \ud800 surrogate", "\udfff", "x" * (handlers.MAX_CHARS + 1)]),
    st.text(st.characters(categories=["Cs", "L", "N", "P", "Zs", "Cc"]), max_size=30),  # Cs: lone surrogates
)
texts = mostly(good_texts, bad_texts, 4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
texts_field = mostly(
    st.lists(mostly(texts, json_values, 8), min_size=1, max_size=4),
    st.one_of(st.lists(texts, min_size=63, max_size=66), json_values),
)
pair = mostly(st.lists(texts, min_size=2, max_size=2), st.one_of(st.lists(texts, max_size=3), json_values))
pairs_field = mostly(
    st.lists(pair, min_size=1, max_size=3),
    st.one_of(st.lists(pair, min_size=63, max_size=66), json_values),
)
optional = {
    "model": st.one_of(st.sampled_from(MODEL_NAMES), json_values),
    "encoding": st.one_of(st.sampled_from(["json", "base64", "hex"]), json_values),
    "other": json_values,
}
events = st.one_of(
    json_values,  # not an object, or an object without the fields
    st.fixed_dictionaries({"texts": texts_field}, optional=optional),
    st.fixed_dictionaries({"pairs": pairs_field}, optional=optional),
    st.fixed_dictionaries({}, optional={"texts": texts_field, "pairs": pairs_field, **optional}),
)
# Not near Python's recursion limit (1,000), where parsing passes or fails by the caller's stack depth.
deep_json = st.one_of(st.integers(1, 500), st.integers(2_000, 50_000)).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n, '{"texts": ' + "[" * n])
)
huge_int_json = st.integers(min_value=4_300, max_value=20_000).map(lambda n: '{"texts": ["a"], "n": ' + "7" * n + "}")


def as_json(value: Any) -> str:
    return json.dumps(value)  # surrogates become \ud800 escapes, as a JSON client would send them


def events_for(function: str) -> st.SearchStrategy:
    """Events of any shape, half of them shaped for ``function``."""
    key, field = ("pairs", pairs_field) if function == "verify" else ("texts", texts_field)
    return mostly(st.fixed_dictionaries({key: field}, optional=optional), events, 2)


def http_events_for(function: str) -> st.SearchStrategy:
    """Function URL events: the event travels as the JSON body, maybe base64-encoded."""
    body = st.one_of(
        json_values,
        events_for(function).map(as_json),
        events_for(function).map(lambda e: base64.b64encode(as_json(e).encode()).decode()),
        deep_json,
        huge_int_json,
    )
    return st.fixed_dictionaries(
        {"requestContext": json_values},
        optional={"body": body, "isBase64Encoded": st.one_of(st.booleans(), json_values)},
    )


def host_bodies_for(function: str) -> st.SearchStrategy:
    return st.one_of(
        st.binary(max_size=200),
        events_for(function).map(lambda e: as_json(e).encode()),
        http_events_for(function).map(lambda e: as_json(e).encode()),
        deep_json.map(str.encode),
        huge_int_json.map(str.encode),
    )


EVENTS = {function: events_for(function) for function in FUNCTIONS}
HTTP_EVENTS = {function: http_events_for(function) for function in FUNCTIONS}
HOST_BODIES = {function: host_bodies_for(function) for function in FUNCTIONS}
FAST = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def text_error(text: Any) -> bool:
    if not isinstance(text, str):
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return not text.strip() or len(text) > handlers.MAX_CHARS


def expected_field(function: str, event: Any) -> str | None:
    """The field a bad event gets wrong first (as the handlers check), or None for a good one."""
    if not isinstance(event, dict):
        return "event"
    if function == "verify":
        pairs = event.get("pairs")
        if not isinstance(pairs, list) or not 1 <= len(pairs) <= handlers.MAX_TEXTS:
            return "pairs"
        for i, pair in enumerate(pairs):
            if not isinstance(pair, list) or len(pair) != 2:
                return f"pairs[{i}]"
            for j, text in enumerate(pair):
                if text_error(text):
                    return f"pairs[{i}][{j}]"
    else:
        items = event.get("texts")
        if not isinstance(items, list) or not 1 <= len(items) <= handlers.MAX_TEXTS:
            return "texts"
        for i, text in enumerate(items):
            if text_error(text):
                return f"texts[{i}]"
    model = event.get("model")
    if "model" in event and not (isinstance(model, str) and model in available(TASKS[function])):
        return "model"
    if function == "embed" and event.get("encoding", "json") not in ("json", "base64"):
        return "encoding"
    return None


def check_answer(function: str, event: Any, answer: Any) -> None:
    """A good event is served; a bad one gets Lambda's error shape naming the field it got wrong."""
    assert isinstance(answer, dict)
    json.dumps(answer)  # JSON-able, as Lambda must send it
    field = expected_field(function, event)
    if field is not None:
        assert answer.get("errorType") in ("InvalidRequest", "ModelNotFound"), answer
        assert answer["field"] == field and field.split("[")[0] in answer["errorMessage"], answer
        return
    assert "errorType" not in answer, answer
    if function == "verify":
        assert len(answer["results"]) == len(event["pairs"])
    elif function == "sentiment":
        assert len(answer["results"]) == len(event["texts"])
    else:
        assert len(answer["embeddings"]) == len(event["texts"]) and answer["dim"] > 0


@pytest.mark.parametrize("function", FUNCTIONS)
@settings(FAST, max_examples=700)
@given(data=st.data())
def test_direct_invocations_never_raise_and_name_the_bad_field(function: str, data: st.DataObject):
    event = data.draw(EVENTS[function])
    check_answer(function, event, handlers.FUNCTIONS[function](event, None))


def http_expectation(event: dict[str, Any]) -> tuple[str | None, Any]:
    """(the field named when the body itself is bad, else None; the parsed body)."""
    body = event.get("body") or ""
    if not isinstance(body, str):
        return "body", None
    try:
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        return None, json.loads(body)
    except (ValueError, RecursionError):
        return "body", None


@pytest.mark.parametrize("function", FUNCTIONS)
@settings(FAST, max_examples=300)
@given(data=st.data())
def test_http_events_answer_400_naming_the_field_never_raise(function: str, data: st.DataObject):
    event = data.draw(HTTP_EVENTS[function])
    answer = handlers.FUNCTIONS[function](event, None)
    assert set(answer) == {"statusCode", "headers", "body"}
    inner = json.loads(answer["body"])
    body_error, parsed = http_expectation(event)
    if body_error:
        assert (answer["statusCode"], inner["field"]) == (400, "body"), inner
        return
    check_answer(function, parsed, inner)
    assert answer["statusCode"] == (400 if "errorType" in inner else 200)


@pytest.fixture(scope="module")
def host() -> Iterator[str]:
    process, url = start_host("--workers", "2")
    yield url
    stop_host(process)


def post(url: str, body: bytes) -> urllib3.BaseHTTPResponse:
    # No retries: a connection closed without an answer fails the test.
    return urllib3.request("POST", url, body=body, timeout=30, retries=False)


def check_host_answer(route: str, function: str, body: bytes, response: urllib3.BaseHTTPResponse) -> None:
    invoke_api = route.endswith("/invocations")
    assert "X-Amz-Function-Error" not in response.headers, response.data  # no function crashed
    answer = json.loads(response.data)
    try:
        event = json.loads(body or b"{}")  # no payload: an empty event, as Lambda's Invoke
    except (ValueError, RecursionError):  # bad JSON or UTF-8; an integer over the digit limit; nesting
        assert response.status == 400, response.data
        error_type = answer["__type"] if invoke_api else answer["errorType"]
        assert error_type == "InvalidRequestContentException"
        assert "request body" in (answer["message"] if invoke_api else answer["errorMessage"])
        return
    assert response.status == 200, response.data
    if handlers.is_http_event(event):
        body_error, parsed = http_expectation(event)
        inner = json.loads(answer["body"])
        if body_error:
            assert (answer["statusCode"], inner["field"]) == (400, "body")
        else:
            check_answer(function, parsed, inner)
    else:
        check_answer(function, event, answer)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("function", FUNCTIONS)
@settings(FAST, max_examples=50)
@given(data=st.data())
def test_the_host_answers_any_body_on_both_routes_never_500(host: str, route: str, function: str, data: st.DataObject):
    body = data.draw(HOST_BODIES[function])
    response = post(host + route.format(function), body)
    check_host_answer(route, function, body, response)


ISSUE_BODIES = [
    b"[" * 100_000,  # closed the connection with no answer
    b'{"texts": [' + b"9" * 5_000 + b"]}",  # likewise
    b'{"texts": ["bad \\ud800 surrogate"]}',  # 500
    b'{"pairs": [["fine?", "bad \\ud800 surrogate"]]}',  # 500
    b'{"requestContext": {}, "body": 5}',  # 500
]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_reviews_bodies_are_answered_naming_the_field(host: str, route: str, function: str):
    for body in ISSUE_BODIES:
        response = post(host + route.format(function), body)
        assert response.status in (200, 400), (body[:40], response.data)
        check_host_answer(route, function, body, response)
    surrogate = json.loads(post(host + route.format("embed"), ISSUE_BODIES[2]).data)
    assert surrogate["field"] == "texts[0]" and "lone surrogate" in surrogate["errorMessage"]
    http_event = json.loads(post(host + route.format(function), ISSUE_BODIES[4]).data)
    assert http_event["statusCode"] == 400 and json.loads(http_event["body"])["field"] == "body"
    assert json.loads(urllib3.request("GET", host + "/healthz").data)["idle"] == 2  # no worker lost
