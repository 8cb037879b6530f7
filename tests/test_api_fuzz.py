"""Bad input at every JSON endpoint's edges: whatever arrives, the answer is a 4xx or a success, never a
500, and the questions, votes and flags already stored are never lost.

Hypothesis generates the bodies, ids and query strings (thousands of cases a run); the hostile cases
the review found (lone surrogates, 50,000 nested lists, integers of 5,001 digits, zero-width text)
are in its strategies and also go through every endpoint as a fixed matrix.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from urllib.parse import quote_from_bytes

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.db.models import Count, F
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import attendee_client
from webapp.events.models import Event
from webapp.questions.models import Flag, Question, Vote

pytestmark = pytest.mark.django_db

ZERO_WIDTH = "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064"
ZERO_WIDTH += "\u2066\u2067\u2068\u2069\ufeff\u00ad\u180e\U000e0041"
ODD = ["\ud800", "\udfff", "\x00", "\x7f", "\x85", "\u3164", "\u2800", "\ufdfa", "\ufe0f", "\u0301"]

# Text from every Unicode category, lone surrogates included, with the invisible and odd characters
# over-represented.
hostile_chars = st.one_of(st.characters(exclude_categories=()), st.sampled_from(list(ZERO_WIDTH)), st.sampled_from(ODD))
# Readable text (any script) with invisible characters in it.
readable_chars = st.one_of(st.characters(categories=["L", "N", "P", "S", "Zs"]), st.sampled_from(list(ZERO_WIDTH)))
hostile_text = st.one_of(
    st.text(readable_chars, min_size=1, max_size=320),
    st.text(hostile_chars, max_size=40),
    st.text(st.sampled_from(list(ZERO_WIDTH)), min_size=1, max_size=400),
    st.tuples(st.text(max_size=300), st.text(st.sampled_from(list(ZERO_WIDTH)), max_size=300)).map("".join),
    st.text(max_size=400),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=10,
)


def _dumps(value: object, ascii_only: bool) -> str:
    return json.dumps(value, ensure_ascii=ascii_only)


# JSON text, not values: a number too long for int(), nesting too deep for the parser.
nested = st.integers(min_value=1, max_value=60_000).map(lambda n: "[" * n + "]" * n)
long_ints = st.integers(min_value=90, max_value=6_000).map(lambda n: "9" * n)
raw_values = st.one_of(
    st.builds(_dumps, json_values, st.booleans()),
    nested,
    long_ints,
    long_ints.map(lambda digits: "-" + digits),
    st.just("1e999999"),
)


def _object(fields: dict[str, str]) -> str:
    return "{" + ", ".join(f"{json.dumps(k)}: {v}" for k, v in fields.items()) + "}"


def body_with(*names: str) -> st.SearchStrategy[bytes]:
    """Bodies for an endpoint that reads ``names``, and bytes that are not UTF-8."""
    # Objects with those fields (any JSON, or text of any kind), other JSON, broken JSON.
    objects = st.dictionaries(st.sampled_from([*names, "other"]), raw_values, max_size=len(names) + 1).map(_object)
    strings = st.builds(_dumps, st.fixed_dictionaries(dict.fromkeys(names, hostile_text)), st.booleans())
    text = st.one_of(objects, strings, raw_values, st.text(max_size=50))
    # Well-formed bodies too, so every run also reaches the success path (asserted by the tests).
    words = st.text(alphabet="abcdefghij klmnopqrstuvwxyz?", min_size=3, max_size=60).filter(str.strip)
    plain = st.fixed_dictionaries(dict.fromkeys(names, words)).map(lambda d: json.dumps(d).encode())
    return st.one_of(
        plain,
        text.map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=300),
        st.sampled_from([b"", b"{", b"null", b"[]", b"\xff\xfe{\x00", b'{"text": "\xed\xa0\x80"}']),
    )


# Query strings: any bytes, percent-encoded (invalid UTF-8 and encoded surrogates included).
query_values = st.one_of(
    st.binary(max_size=60).map(quote_from_bytes),
    hostile_text.map(lambda t: quote_from_bytes(t.encode("utf-8", "surrogatepass"))),
    st.text(st.sampled_from("abc%&=+;?#\\ "), max_size=20),
)
FUZZ = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
MODERATION_ACTIONS = ["approve", "hide", "show", "answer", "unanswer", "now", "not_now", "pin", "unpin", "retry"]


@dataclass
class Stored:
    """An event with questions, votes and flags stored before the fuzzing, and who may call what."""

    attendee: Client
    stranger: Client  # never opened an event page: no identity
    moderator: Client
    other_moderator: Client  # moderates another event
    question_ids: list[int]
    flag_ids: list[int]
    texts: dict[int, str]

    def ids(self) -> st.SearchStrategy[int]:
        return st.one_of(st.sampled_from(self.question_ids), st.integers(min_value=0, max_value=2**70), st.just(2**63))

    def event_of(self, pk: int) -> str | None:
        return Question.objects.filter(pk=pk).values_list("event__code", flat=True).first()

    def check_nothing_lost(self) -> None:
        assert dict(Question.objects.filter(pk__in=self.texts).values_list("pk", "text")) == self.texts
        assert Flag.objects.filter(pk__in=self.flag_ids).count() == len(self.flag_ids)
        miscounted = Question.objects.annotate(n=Count("votes")).exclude(vote_count=F("n"))
        assert not miscounted.exists(), list(miscounted.values("pk", "vote_count", "n"))
        for text in Question.objects.values_list("text", flat=True):
            assert text and len(text) <= 300
            assert not any(unicodedata.category(c) in ("Cf", "Cs", "Cc") for c in text), text


def _moderator_client(event: Event, name: str) -> Client:
    user = User.objects.create_user(name, password="pw-for-tests-only")
    event.moderators.add(user)
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def stored(event: Event, settings) -> Stored:
    # One test client address stands for a whole venue; every example starts a fresh minute anyway.
    settings.POSTS_PER_MINUTE = settings.POSTS_PER_MINUTE_PER_ADDRESS = 100_000
    settings.VOTES_PER_MINUTE = settings.SIMILAR_PER_MINUTE = 100_000
    other = Event.create("Other event", code="OTHER")
    Question.objects.create(event=other, text="Is the other office moving?", attendee="someone")
    asked = [
        Question.objects.create(event=event, text=text, attendee="seed", **fields)
        for text, fields in [
            ("Will the slides be shared after the talk?", {}),
            ("Are you going to share the slides afterwards?", {}),
            ("Why were bonuses cut?", {"status": Question.Status.AWAITING_APPROVAL}),
            ("Hidden one?", {"status": Question.Status.HIDDEN}),
            ("Failed one?", {"state": Question.State.FAILED}),
        ]
    ]
    flags = [
        Flag.objects.create(question=asked[1], matched=asked[0], kind=Flag.Kind.DUPLICATE, similarity=0.9),
        Flag.objects.create(question=asked[4], matched=asked[0], kind=Flag.Kind.RELATED, similarity=0.6),
    ]
    for i in range(3):
        Vote.objects.create(question=asked[0], attendee=f"voter-{i}")
    Question.objects.filter(pk=asked[0].pk).update(vote_count=3)
    return Stored(
        attendee=attendee_client(),
        stranger=Client(),
        moderator=_moderator_client(event, "mod"),
        other_moderator=_moderator_client(other, "other-mod"),
        question_ids=[q.pk for q in asked],
        flag_ids=[f.pk for f in flags],
        texts={q.pk: q.text for q in Question.objects.all()},
    )


def fresh_minute() -> None:
    """Rate-limit counters start empty for each example (a flood is its own test below)."""
    cache.clear()


def assert_400_names(response, *fields: str) -> None:
    if response.status_code == 400:
        assert response.json().get("field") in fields, response.content


# --- the attendee's endpoints -------------------------------------------------------------------


def test_posting_anything_never_answers_500(stored: Stored):
    stored_now: list[int] = []

    @FUZZ
    @given(body=body_with("text", "name"))
    def run(body: bytes):
        fresh_minute()
        before = Question.objects.count()
        response = stored.attendee.post("/api/events/ALLHANDS/questions", body, content_type="application/json")
        assert response.status_code in (201, 400), response.content
        assert_400_names(response, "body", "text", "name")
        assert Question.objects.count() == before + (response.status_code == 201)
        if response.status_code == 201:
            assert response.json()["text"] == Question.objects.latest("pk").text
            stored_now.append(response.json()["id"])
        without = stored.stranger.post("/api/events/ALLHANDS/questions", body, content_type="application/json")
        assert without.status_code == 403 and "open the event page first" in without.json()["error"]
        assert Question.objects.count() == before + (response.status_code == 201)
        stored.check_nothing_lost()

    run()
    assert len(stored_now) >= 10  # the fuzzing reached the success path too


def test_text_made_of_invisible_characters_is_refused_as_empty(stored: Stored):
    @FUZZ
    @given(text=st.text(st.sampled_from([*ZERO_WIDTH, " ", "\u3164", "\ufe0f", "\u0301", "\n"]), max_size=500))
    def run(text: str):
        fresh_minute()
        body = json.dumps({"text": text})
        response = stored.attendee.post("/api/events/ALLHANDS/questions", body, content_type="application/json")
        assert response.status_code == 400 and response.json()["error"] == "text: required", response.content
        similar = stored.attendee.get("/api/events/ALLHANDS/similar", {"q": text})
        assert similar.status_code == 400 and similar.json()["field"] == "q"
        compare = stored.attendee.post("/api/compare", json.dumps({"a": "Fine?", "b": text}), "application/json")
        assert compare.status_code == 400 and compare.json()["field"] == "b"

    run()
    stored.check_nothing_lost()


def test_query_strings_never_answer_500(stored: Stored):
    @FUZZ
    @given(q=query_values, sort=query_values, status=query_values, who=st.sampled_from(["attendee", "stranger"]))
    def run(q: str, sort: str, status: str, who: str):
        fresh_minute()
        client: Client = getattr(stored, who)
        response = client.get(f"/api/events/ALLHANDS/similar?q={q}")
        assert response.status_code in (200, 400), response.content
        assert_400_names(response, "q")
        assert client.get(f"/api/events/ALLHANDS/questions?sort={sort}").status_code in (200, 400)
        assert stored.moderator.get(f"/api/events/ALLHANDS/flags?status={status}").status_code in (200, 400)

    run()
    stored.check_nothing_lost()


def test_reading_and_voting_by_id_never_answer_500(stored: Stored):
    @FUZZ
    @given(data=st.data())
    def run(data):
        fresh_minute()
        pk = data.draw(stored.ids())
        body = data.draw(body_with("any"))
        reader = data.draw(st.sampled_from(["attendee", "stranger", "other_moderator"]))
        status = getattr(stored, reader).get(f"/api/questions/{pk}").status_code
        if reader == "attendee":
            assert status in (200, 404)
        else:  # no identity; the other event's moderator reads only that event's questions
            assert status == (200 if reader == "other_moderator" and stored.event_of(pk) == "OTHER" else 404)
        vote = stored.attendee.post(f"/api/questions/{pk}/vote", body, content_type="application/json")
        assert vote.status_code in (200, 404, 409), vote.content
        refused = stored.stranger.post(f"/api/questions/{pk}/vote", body, content_type="application/json")
        assert refused.status_code == 403
        stored.check_nothing_lost()

    run()


def test_an_attendee_never_sees_a_verdict_or_another_events_question(stored: Stored):
    Flag.objects.filter(pk=stored.flag_ids[0]).update(status=Flag.Status.DISMISSED)
    other = Question.objects.get(event__code="OTHER").pk

    @FUZZ
    @given(pk=st.sampled_from([*stored.question_ids, other]))
    def run(pk: int):
        response = stored.attendee.get(f"/api/questions/{pk}")
        if pk == other:
            assert response.status_code == 404
        if response.status_code == 200:
            assert all(set(f) == {"id", "kind", "similarity", "matched_id"} for f in response.json()["flags"])
        moderated = stored.moderator.get(f"/api/questions/{pk}")
        assert moderated.status_code == (404 if pk == other else 200)
        if pk != other:
            assert all("status" in f for f in moderated.json()["flags"])

    run()


# --- the moderators' endpoints ------------------------------------------------------------------


def test_moderating_anything_never_answers_500(stored: Stored):
    @FUZZ
    @given(data=st.data())
    def run(data):
        fresh_minute()
        pk = data.draw(stored.ids())
        body = data.draw(
            st.one_of(
                body_with("action"),
                st.sampled_from(MODERATION_ACTIONS).map(lambda a: json.dumps({"action": a}).encode()),
            )
        )
        url = f"/api/questions/{pk}/moderate"
        mine = stored.event_of(pk) != "OTHER"
        response = stored.moderator.post(url, body, content_type="application/json")
        assert response.status_code in ((200, 400, 404, 409) if mine else (403,)), response.content
        assert_400_names(response, "body", "action")
        outsider = data.draw(st.sampled_from(["attendee", "stranger"] + (["other_moderator"] if mine else [])))
        assert getattr(stored, outsider).post(url, body, content_type="application/json").status_code in (403, 404)
        stored.check_nothing_lost()

    run()


def test_flag_verdicts_and_queues_never_answer_500(stored: Stored):
    @FUZZ
    @given(
        pk=st.one_of(st.sampled_from(stored.flag_ids), st.integers(min_value=0, max_value=2**70)),
        verdict=st.sampled_from(["merge", "dismiss"]),
        body=body_with("any"),
        page=st.sampled_from(["flags", "queue", "dashboard"]),
        who=st.sampled_from(["attendee", "stranger", "other_moderator"]),
    )
    def run(pk: int, verdict: str, body: bytes, page: str, who: str):
        fresh_minute()
        url = f"/api/flags/{pk}/{verdict}"
        outsider: Client = getattr(stored, who)
        assert outsider.post(url, body, content_type="application/json").status_code in (403, 404)
        assert stored.moderator.post(url, body, content_type="application/json").status_code in (200, 404, 409)
        assert stored.moderator.get(f"/api/events/ALLHANDS/{page}").status_code == 200
        assert outsider.get(f"/api/events/ALLHANDS/{page}").status_code == 403
        stored.check_nothing_lost()

    run()


def test_writing_answers_never_answers_500(stored: Stored):
    answered: list[int] = []

    @FUZZ
    @given(data=st.data())
    def run(data):
        fresh_minute()
        pk = data.draw(stored.ids())
        body = data.draw(body_with("text"))
        url = f"/api/questions/{pk}/answer"
        mine = stored.event_of(pk) == "ALLHANDS"
        response = stored.moderator.post(url, body, content_type="application/json")
        assert response.status_code in ((200, 400, 409) if mine else (403, 404)), response.content
        assert_400_names(response, "body", "text")
        if response.status_code == 200 and response.json()["answer"]:
            answered.append(pk)
            answer = Question.objects.get(pk=pk).answer
            assert len(answer) <= 2000 and not any(unicodedata.category(c) in ("Cf", "Cs") for c in answer)
        outsider = data.draw(st.sampled_from(["attendee", "stranger"] + (["other_moderator"] if mine else [])))
        assert getattr(stored, outsider).post(url, body, content_type="application/json").status_code in (403, 404)
        stored.check_nothing_lost()

    run()
    assert answered  # the fuzzing reached the success path too


def test_an_askers_edits_and_withdrawals_never_answer_500(stored: Stored):
    """The asker's own PATCH and DELETE with any body: a 200, a 400 naming the field, or a 409 once
    withdrawn; another attendee's, a 403; nothing stored by others changes."""
    posted = stored.attendee.post("/api/events/ALLHANDS/questions", {"text": "Mine to edit?"}, "application/json")
    own = posted.json()["id"]
    edited: list[str] = []

    @FUZZ
    @given(body=body_with("text"), method=st.sampled_from(["patch", "patch", "patch", "delete"]))
    def run(body: bytes, method: str):
        fresh_minute()
        response = getattr(stored.attendee, method)(f"/api/questions/{own}", body, content_type="application/json")
        assert response.status_code in (200, 400, 409), response.content
        assert_400_names(response, "body", "text")
        if response.status_code == 200 and method == "patch":
            edited.append(response.json()["text"])
        other = stored.question_ids[0]
        assert stored.attendee.patch(f"/api/questions/{other}", body, "application/json").status_code in (400, 403)
        stored.check_nothing_lost()

    run()
    assert edited


# --- the compare endpoint and the rest ----------------------------------------------------------


def test_compare_never_answers_500(stored: Stored):
    compared: list[float] = []

    @FUZZ
    @given(body=body_with("a", "b"))
    def run(body: bytes):
        fresh_minute()
        response = stored.stranger.post("/api/compare", body, content_type="application/json")
        assert response.status_code in (200, 400), response.content
        assert_400_names(response, "body", "a", "b")
        if response.status_code == 200:
            compared.append(response.json()["similarity"])
            assert -1.0 <= compared[-1] <= 1.0001

    run()
    assert len(compared) >= 10  # the fuzzing reached the functions too


ROUTES = [
    "/api/events/ALLHANDS/questions",
    "/api/events/ALLHANDS/similar",
    "/api/events/ALLHANDS/flags",
    "/api/events/ALLHANDS/queue",
    "/api/events/ALLHANDS/dashboard",
    "/api/questions/{}",
    "/api/questions/{}/vote",
    "/api/questions/{}/moderate",
    "/api/questions/{}/answer",
    "/api/flags/{}/merge",
    "/api/flags/{}/dismiss",
    "/api/compare",
    "/healthz",
]


def test_any_method_on_any_route_never_answers_500(stored: Stored):
    @FUZZ
    @given(
        route=st.sampled_from(ROUTES),
        method=st.sampled_from(["get", "post", "put", "patch", "delete", "options", "head"]),
        who=st.sampled_from(["attendee", "stranger", "moderator", "other_moderator"]),
        code=st.one_of(st.just("ALLHANDS"), st.text(st.sampled_from("ALHNDS-x0%"), max_size=25)),
        body=body_with("text", "action", "a"),
        data=st.data(),
    )
    def run(route: str, method: str, who: str, code: str, body: bytes, data):
        fresh_minute()
        url = route.replace("ALLHANDS", quote_from_bytes(code.encode()) or "ALLHANDS").format(data.draw(stored.ids()))
        client: Client = getattr(stored, who)
        if method in ("get", "head"):
            response = getattr(client, method)(url)
        else:
            response = getattr(client, method)(url, body, content_type="application/json")
        assert response.status_code < 500, (method, url, response.content[:300])
        stored.check_nothing_lost()

    run()


HOSTILE_BODIES = {
    "surrogate": b'{"text": "bad \\ud800 surrogate", "name": "\\udfff", "action": "\\ud800", "a": "\\ud800", "b": "x"}',
    "nested": b"[" * 50_000 + b"]" * 50_000,
    "nested-field": b'{"text": ' + b"[" * 50_000 + b"]" * 50_000 + b', "a": "x", "b": "y"}',
    "long-int": b'{"text": ' + b"1" * 5_001 + b', "action": 1, "a": ' + b"2" * 5_001 + b"}",
    "zero-width": json.dumps({"text": ZERO_WIDTH, "name": ZERO_WIDTH, "a": ZERO_WIDTH, "b": ZERO_WIDTH}).encode(),
    "not-utf8": b'{"text": "\xed\xa0\x80"}',
}


@pytest.mark.parametrize("name", HOSTILE_BODIES)
def test_the_reviews_hostile_bodies_on_every_post_route(stored: Stored, name: str):
    body = HOSTILE_BODIES[name]
    pk, flag = stored.question_ids[0], stored.flag_ids[0]
    routes = [
        ("/api/events/ALLHANDS/questions", stored.attendee, {400}),
        (f"/api/questions/{pk}/moderate", stored.moderator, {400}),
        # Invisible text cleans to nothing: that removes the answer (a 200).
        (f"/api/questions/{pk}/answer", stored.moderator, {200, 400}),
        ("/api/compare", stored.stranger, {400}),
        (f"/api/questions/{pk}/vote", stored.attendee, {200}),  # a vote reads no body
        (f"/api/flags/{flag}/dismiss", stored.moderator, {200, 409}),
    ]
    for url, client, expected in routes:
        response = client.post(url, body, content_type="application/json")
        assert response.status_code in expected, (url, response.content[:300])
        assert_400_names(response, "body", "text", "name", "action", "a", "b")
    stored.check_nothing_lost()


def test_non_utf8_and_huge_bodies(stored: Stored):
    client = stored.attendee
    before = Question.objects.count()
    response = client.post("/api/events/ALLHANDS/questions", b"\xff\xfe{\x00", content_type="application/json")
    assert response.status_code == 400 and response.json()["field"] == "body"
    huge = json.dumps({"text": "x" * 2_000_000}).encode()
    response = client.post("/api/events/ALLHANDS/questions", huge, content_type="application/json")
    assert response.status_code in (400, 413)
    assert Question.objects.count() == before


def test_ten_thousand_posts_from_one_attendee(event, django_settings_limits, still_clock):
    """A flood from one attendee: the rate limit answers 429, nothing else breaks, nothing stored is lost."""
    flooder, other = attendee_client(), attendee_client()
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
