"""The developers' page at /models/: the compare form and its JSON twin go through the functions."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PARAPHRASES = {"a": "Will the slides be shared after the talk?", "b": "Are you going to share the slides afterwards?"}


def test_models_page_lists_the_models(client: Client):
    response = client.get("/models/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "minilm-l6" in body and "minilm-l3" in body
    assert "csrfmiddlewaretoken" in body


def test_home_page_is_for_joining_and_links_to_the_models_page(client: Client):
    body = client.get("/").content.decode()
    assert 'name="code"' in body and 'href="/models/"' in body
    assert "minilm-l6" not in body and "csrfmiddlewaretoken" not in body
    assert client.post("/", PARAPHRASES).status_code == 405


def test_models_page_runs_no_inline_code_under_the_policy(client: Client):
    response = client.get("/models/")
    assert "script-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    assert "<script" not in body and "<style" not in body
    assert not re.search(r"<[a-z][^>]*\s(on[a-z]+|style)\s*=", body)


def test_compare_form_shows_verdict_and_moods(client: Client):
    response = client.post("/models/", PARAPHRASES)
    assert response.status_code == 200
    result = response.context["result"]
    assert result["kind"] == "duplicate"
    assert result["similarity"] > 0.6
    assert len(result["sentiment"]) == 2
    assert 'class="verdict verdict-duplicate"' in response.content.decode()


def test_compare_form_rejects_an_empty_question_with_400(client: Client):
    response = client.post("/models/", {"a": "Will the slides be shared?", "b": "   "})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


def test_compare_escapes_user_input(client: Client):
    response = client.post("/models/", {"a": "<script>alert(1)</script>", "b": "x" * 301})
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in response.content.decode()


def test_post_without_csrf_token_is_refused():
    response = Client(enforce_csrf_checks=True).post("/models/", PARAPHRASES)
    assert response.status_code == 403


def test_api_compare_answers_json(client: Client):
    response = client.post("/api/compare", json.dumps(PARAPHRASES), content_type="application/json")
    assert response.status_code == 200
    data = response.json()
    assert data["kind"] == "duplicate"
    assert {s["label"] for s in data["sentiment"]} <= {"negative", "neutral", "positive"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
        (json.dumps({"a": "only one"}).encode(), "b"),
        (json.dumps({"a": "x" * 301, "b": "fine"}).encode(), "a"),
    ],
)
def test_api_compare_bad_input_is_400_naming_the_field(client: Client, body: bytes, field: str):
    response = client.post("/api/compare", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"{field}:")


def test_compare_is_rate_limited_per_address(client: Client, still_clock):
    statuses = [
        client.post("/api/compare", json.dumps(PARAPHRASES), content_type="application/json").status_code
        for _ in range(31)
    ]
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429


def test_healthz_reports_database_and_models(client: Client):
    data = client.get("/healthz").json()
    assert data["status"] == "ok"
    assert "minilm-l6" in data["models"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"a": "bad \\ud800 surrogate", "b": "fine"}', "a"),
        (b"[" * 50_000 + b"]" * 50_000, "body"),
        (b'{"a": ' + b"1" * 5_001 + b', "b": "fine"}', "body"),
        (b'{"a": "fine", "b": ["not", "text"]}', "b"),
        ('{"a": "Fine?", "b": "\u200b\u200d\u2060\ufeff\u00ad\u202a\u2069"}'.encode(), "b"),
        (json.dumps({"a": "Fine?", "b": "nul\x00char"}).encode(), "b"),
    ],
)
def test_api_compare_hostile_bodies_are_400_naming_the_field(client: Client, body: bytes, field: str):
    response = client.post("/api/compare", body, content_type="application/json")
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["field"] == field and data["error"].startswith(f"{field}:")


def test_compare_cleans_the_text_before_checking_it(client: Client):
    zero_width = "\u200b\u200c\u200d\u2060\ufeff"
    response = client.post("/models/", {"a": zero_width, "b": zero_width})
    assert response.status_code == 400 and "This field is required" in response.content.decode()
    padded = {"a": PARAPHRASES["a"] + "\u200b" * 300, "b": "\u202e" + PARAPHRASES["b"].replace(" ", " \u00ad")}
    response = client.post("/api/compare", json.dumps(padded), content_type="application/json")
    assert response.status_code == 200
    plain = client.post("/api/compare", json.dumps(PARAPHRASES), content_type="application/json").json()
    assert response.json()["similarity"] == plain["similarity"]
