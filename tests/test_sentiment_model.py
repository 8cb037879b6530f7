"""The shipped sentiment model, loaded as the functions load it, on event questions of each kind."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.runtime import Model, get_model

NAME = "sentiment-minilm-l3"

# Not in the training data (training/data/sentiment_event_questions.tsv): a fresh check.
CLEAR_CASES = [
    ("This was the best talk of the conference, thank you!", "positive"),
    ("The audio has been terrible the whole time and nobody is fixing it", "negative"),
    ("What time does the next session start?", "neutral"),
]
TEXTS = [text for text, _ in CLEAR_CASES]

# Plain questions about failures, asked to learn how something works. Not in the training data
# either; the student scored the first three negative at 0.67-0.84 before its head was refitted
# (training.sentiment_head).
NEUTRAL_ABOUT_FAILURES = [
    "How do you handle errors when the upstream service is down?",
    "What happens if the upload fails halfway through?",
    "Does the SDK crash when the token is invalid, or does it return an error?",
    "What happens to pending writes when the replica falls behind?",
    "Is there any data loss if the process is killed during a checkpoint?",
    "What if the keynote runs late, is lunch pushed back?",
]
# Real complaints about what the dashboard exists to catch: they must stay negative.
COMPLAINTS = [
    "The wifi has been down all morning, this is ridiculous.",
    "Why is the wifi so unreliable at this venue?",
    "The audio keeps cutting out and we can't hear a thing.",
    "Can anyone fix the sound? It's been terrible for an hour.",
    "This session is so boring, I'm falling asleep.",
    "Is this whole talk going to be this boring?",
]


@pytest.fixture(scope="module")
def model() -> Model:
    return get_model(NAME)


@pytest.fixture(scope="module")
def batch_probs(model: Model) -> np.ndarray:
    return model.classify(TEXTS)


def test_card_and_graph_agree(model: Model):
    assert model.card.task == "sentiment"
    assert model.card.labels == ("negative", "neutral", "positive")
    outputs = model.session.get_outputs()
    assert [o.name for o in outputs] == ["logits"]
    assert outputs[0].shape[-1] == len(model.card.labels) == model.card.output_dim


@pytest.mark.parametrize(("index", "expected"), [(i, label) for i, (_, label) in enumerate(CLEAR_CASES)])
def test_clear_cases_get_their_label(model: Model, batch_probs: np.ndarray, index: int, expected: str):
    probs = batch_probs[index]
    assert model.card.labels[int(np.argmax(probs))] == expected, f"{TEXTS[index]!r}: {probs.round(3)}"


def test_probabilities_sum_to_one(batch_probs: np.ndarray):
    assert batch_probs.shape == (len(TEXTS), 3)
    assert np.all(batch_probs >= 0)
    assert np.all(batch_probs <= 1)
    np.testing.assert_allclose(batch_probs.sum(axis=1), 1.0, atol=1e-5)


def test_batch_equals_one_at_a_time(model: Model, batch_probs: np.ndarray):
    # A batch pads its texts to the longest; the mask must keep padding out of the pooled vector.
    single = np.vstack([model.classify([text]) for text in TEXTS])
    np.testing.assert_allclose(batch_probs, single, atol=1e-4)


@pytest.mark.parametrize("text", NEUTRAL_ABOUT_FAILURES)
def test_questions_about_failures_are_not_complaints(model: Model, text: str):
    probs = model.classify([text])[0]
    assert probs[model.card.labels.index("negative")] < 0.5, f"{text!r}: {probs.round(3)}"


@pytest.mark.parametrize("text", COMPLAINTS)
def test_complaints_stay_negative(model: Model, text: str):
    probs = model.classify([text])[0]
    assert model.card.labels[int(np.argmax(probs))] == "negative", f"{text!r}: {probs.round(3)}"
    assert probs[model.card.labels.index("negative")] > 0.8, f"{text!r}: {probs.round(3)}"
