"""Bad input at the API's edges: whatever arrives, the answer is a 4xx or a success, never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp.questions.models import Question

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=400),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)
bodies = st.one_of(
    st.binary(max_size=600),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({}, optional={"text": json_values, "name": json_values}).map(
        lambda v: json.dumps(v).encode()
    ),
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=bodies)
def test_posting_anything_never_answers_500(event, body: bytes):
    client = Client()
    before = Question.objects.count()
    response = client.post("/api/events/ALLHANDS/questions", body, content_type="application/json")
    assert response.status_code in (201, 400, 429), response.content
    assert Question.objects.count() == before + (response.status_code == 201)
    if response.status_code == 400:
        assert response.json()["field"] in ("body", "text", "name")


@FUZZ
@given(q=st.text(max_size=400), sort=st.text(max_size=20))
def test_query_strings_never_answer_500(event, q: str, sort: str):
    client = Client()
    assert client.get("/api/events/ALLHANDS/similar", {"q": q}).status_code in (200, 400, 429)
    assert client.get("/api/events/ALLHANDS/questions", {"sort": sort}).status_code in (200, 400)


@FUZZ
@given(
    path=st.sampled_from(["/api/questions/{}/vote", "/api/questions/{}/moderate", "/api/flags/{}/merge"]),
    pk=st.integers(min_value=0, max_value=2**62),
    body=bodies,
)
def test_ids_and_bodies_on_other_routes_never_answer_500(event, path: str, pk: int, body: bytes):
    response = Client().post(path.format(pk), body, content_type="application/json")
    assert response.status_code in (400, 403, 404, 429)


def test_non_utf8_and_huge_bodies(event):
    client = Client()
    response = client.post("/api/events/ALLHANDS/questions", b"\xff\xfe{\x00", content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "body"
    huge = json.dumps({"text": "x" * 2_000_000}).encode()
    response = client.post("/api/events/ALLHANDS/questions", huge, content_type="application/json")
    assert response.status_code in (400, 413)
    assert Question.objects.count() == 0


def test_ten_thousand_posts_from_one_attendee(event, django_settings_limits, still_clock):
    """A flood from one attendee: the rate limit answers 429, nothing else breaks, nothing stored is lost."""
    flooder, other = Client(), Client()
    before = other.post("/api/events/ALLHANDS/questions", {"text": "Posted before the flood?"}, "application/json")
    assert before.status_code == 201
    statuses: dict[int, int] = {}
    for i in range(10_000):
        response = flooder.post("/api/events/ALLHANDS/questions", {"text": f"Spam question {i}?"}, "application/json")
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    assert set(statuses) <= {201, 429}, statuses
    assert statuses[201] == django_settings_limits  # the limiter's minute stands still (still_clock)
    assert statuses[429] == 10_000 - statuses[201]
    assert Question.objects.filter(text__startswith="Spam question").count() == statuses[201]
    assert Question.objects.filter(text="Posted before the flood?").exists()
    after = other.post(
        "/api/events/ALLHANDS/questions", {"text": "Can I still ask after the flood?"}, "application/json"
    )
    assert after.status_code == 201  # the others still get in (the address limit is set high here)


@pytest.fixture
def django_settings_limits(settings) -> int:
    settings.POSTS_PER_MINUTE = 6
    settings.POSTS_PER_MINUTE_PER_ADDRESS = 100_000  # one test client address stands for a whole venue
    return settings.POSTS_PER_MINUTE
