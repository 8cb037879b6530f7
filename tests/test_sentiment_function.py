"""The sentiment function (``embeddings.handlers.sentiment``) through its Lambda interface."""

from __future__ import annotations

import pytest

from embeddings import handlers


def test_response_shape_and_probabilities():
    response = handlers.sentiment({"texts": ["Is the talk recorded?", "Thanks, that was brilliant!"]}, None)
    assert response["model"] == handlers.DEFAULT_SENTIMENT_MODEL
    assert set(response["timings_ms"]) == {"tokenize", "infer", "total"}
    assert isinstance(response["cold"], bool)
    assert len(response["results"]) == 2
    for result in response["results"]:
        assert set(result["scores"]) == {"negative", "neutral", "positive"}
        assert sum(result["scores"].values()) == pytest.approx(1.0, abs=1e-4)
        assert result["label"] == max(result["scores"], key=result["scores"].get)


def test_labels_follow_the_mood():
    texts = [
        "This was the best talk of the conference, thank you so much!",
        "The audio has been terrible the whole time and nobody is fixing it.",
        "What time does the next session start?",
    ]
    labels = [r["label"] for r in handlers.sentiment({"texts": texts}, None)["results"]]
    assert labels == ["positive", "negative", "neutral"]


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({}, "texts"),
        ({"texts": [None]}, "texts[0]"),
        ({"texts": ["ok"], "model": "minilm-l6"}, "model"),
        ({"texts": ["ok"], "model": "nope"}, "model"),
    ],
)
def test_bad_events_name_the_field(event, field):
    response = handlers.sentiment(event, None)
    assert response["errorType"] in ("InvalidRequest", "ModelNotFound")
    assert response["field"] == field
