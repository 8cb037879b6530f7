"""The verify function: a pair reader that says whether a new question is the same as an earlier one."""

from __future__ import annotations

import pytest

from embeddings import handlers
from embeddings.cards import DEFAULT_VERIFIER_MODEL, available, load_card

pytestmark = pytest.mark.skipif(
    DEFAULT_VERIFIER_MODEL not in available("verifier"), reason=f"{DEFAULT_VERIFIER_MODEL} is not shipped"
)


def verify(*pairs: tuple[str, str]) -> list[float]:
    response = handlers.verify({"pairs": [list(p) for p in pairs]})
    assert "errorType" not in response, response
    assert response["model"] == DEFAULT_VERIFIER_MODEL and set(response["timings_ms"]) >= {"infer", "total"}
    return [r["logit"] for r in response["results"]]


def test_a_paraphrase_reads_as_the_same_question_and_another_ask_does_not():
    same, other, unrelated = verify(
        ("Will the slides be shared after the talk?", "can we get a copy of the deck afterwards"),
        ("Will the slides be shared after the talk?", "Will the recording be on YouTube?"),
        ("Will the slides be shared after the talk?", "Where can I park my car?"),
    )
    assert same > other > unrelated
    response = handlers.verify({"pairs": [["Is the session recorded?", "Will there be a recording of this?"]]})
    (result,) = response["results"]
    assert 0.0 <= result["probability"] <= 1.0 and (result["probability"] > 0.5) == (result["logit"] > 0)


def test_the_pair_is_read_in_order_and_each_call_is_its_own():
    a, b = "How much does the Pro plan cost?", "What is the price of the Pro tier?"
    (alone,) = verify((a, b))
    first, _ = verify((a, b), ("Where is room B?", "Is lunch included?"))
    assert first == pytest.approx(alone, abs=1e-4)  # no padded batch: a pair's score never depends on others


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({}, "pairs"),
        ({"pairs": []}, "pairs"),
        ({"pairs": [["only one"]]}, "pairs[0]"),
        ({"pairs": [["fine question?", "also fine?"], "not a pair"]}, "pairs[1]"),
        ({"pairs": [["fine question?", " "]]}, "pairs[0][1]"),
        ({"pairs": [["fine question?", "x" * 301]]}, "pairs[0][1]"),
        ({"pairs": [["a b c?", "d e f?"]], "model": "minilm-l6"}, "model"),
        ({"pairs": [["a b c?", "d e f?"]], "model": "no-such-model"}, "model"),
    ],
)
def test_a_bad_event_names_the_field(event: dict, field: str):
    response = handlers.verify(event)
    assert response["errorType"] in ("InvalidRequest", "ModelNotFound") and response["field"] == field


@pytest.mark.parametrize(
    ("a", "b", "conflict"),
    [
        (
            "How long can you listen at 85 decibels safely?",
            "is 100 decibels safe, and for how long?",
            "numbers 85 / 100",
        ),
        ("When is homework 8 due?", "hw 7 deadline?", "numbers 8 / 7"),
        ("Can I bring 2 guests?", "is a plus two ok?", None),  # one side gives no digits: the reader decides
        ("Q3 results: 1,200 new users?", "did Q3 add 1200 users", None),  # the same numbers, written otherwise
    ],
)
def test_other_numbers_are_a_conflict_whatever_the_reader_says(a: str, b: str, conflict: str | None):
    (result,) = handlers.verify({"pairs": [[a, b]]})["results"]
    assert result["conflict"] == conflict


def test_the_card_says_how_the_app_combines_the_logit_with_the_cosine():
    combine = load_card(DEFAULT_VERIFIER_MODEL).raw["combine"]
    assert {"w_cosine", "w_logit", "bias"} <= set(combine)
