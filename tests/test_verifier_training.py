"""The cross-encoder verifier's lab step (training.verifier): pair mining and the replay metrics.

Everything here runs without torch; the shipped model is checked with onnxruntime when it exists.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from embeddings.cards import MODELS_DIR
from training import verifier
from training.verifier import Question

SHIPPED = next(iter(sorted(MODELS_DIR.glob("verifier-*"))), MODELS_DIR / verifier.NAME)


def stream(*rows: tuple[str, str, str, str]) -> list[Question]:
    """(event, cluster, topic, text) rows in posting order."""
    return [Question(e, i, c, t, text) for i, (e, c, t, text) in enumerate(rows, 1)]


def unit(*rows: list[float]) -> np.ndarray:
    m = np.array(rows, dtype=np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


QUESTIONS = stream(
    ("ev1", "c0.0", "price", "how much is the basic plan"),
    ("ev1", "c0.1", "price", "how much is the pro plan"),
    ("ev1", "c0.0", "price", "what does basic cost"),
    ("ev1", "c1.0", "dates", "when is the launch"),
    ("ev2", "c0.0", "talk", "is the talk recorded"),
)
VECTORS = unit([1, 0, 0], [0.9, 0.3, 0], [0.95, 0.1, 0.05], [0.6, 0, 0.8], [1, 0, 0])


def test_candidates_are_earlier_questions_of_the_same_event_best_first():
    candidates = verifier.stream_candidates(QUESTIONS, VECTORS, k=2)
    assert all(c.earlier < c.question for c in candidates)
    assert all(QUESTIONS[c.question].event == QUESTIONS[c.earlier].event for c in candidates)
    third = [c for c in candidates if c.question == 2]
    assert [c.earlier for c in third] == [0, 1] and [c.rank for c in third] == [0, 1]
    assert third[0].same_cluster and not third[1].same_cluster and third[1].same_topic
    assert not any(c.question == 4 for c in candidates), "the first question of an event has no candidate"


def test_earlier_duplicates_are_counted_per_event_and_cluster():
    assert verifier.has_earlier_duplicate(QUESTIONS) == [False, False, True, False, False]


def test_hard_pairs_are_other_topics_of_the_same_event():
    pairs = verifier.hard_pairs(QUESTIONS, VECTORS, per_question=1)
    assert (0, 3) in pairs and len(pairs) == 4
    assert all(QUESTIONS[a].topic != QUESTIONS[b].topic and QUESTIONS[a].event == QUESTIONS[b].event for a, b in pairs)


def test_mined_examples_label_paraphrases_and_swaps():
    swaps = [("how much is the basic plan", "how much is the premium plan")]
    examples, counts = verifier.mine_examples(QUESTIONS, VECTORS, swaps, random.Random(0))
    labels = {(e.a, e.b): e.label for e in examples}
    assert labels[("what does basic cost", "how much is the basic plan")] == 1
    assert labels[("how much is the basic plan", "what does basic cost")] == 1
    assert counts["swaps"] == 1
    [swap] = [e for e in examples if "premium" in e.a + e.b]
    assert swap.label == 0
    assert {swap.a, swap.b} - {"how much is the premium plan"} <= {"how much is the basic plan", "what does basic cost"}
    assert all(e.weight == 2.0 for e in examples[: counts["candidates"]] if e.weight != 1.0)


def test_operating_points_and_the_gate():
    scores = np.array([0.9, 0.8, 0.7, 0.6, -np.inf])
    right = np.array([True, True, False, True, True])
    points = verifier.operating_points(scores, right, positives=4)
    assert points["precision_at_recall_0.60"] == 0.75  # 3 right of 4 flags reach recall 0.75
    assert points["recall_at_precision_0.85"] == 0.5
    gated = verifier.combined(np.array([0.4, 0.9]), np.array([5.0, 0.0]), {"gate": 0.5, "weights": [0, 1], "bias": 0})
    assert gated[0] == -np.inf and gated[1] == pytest.approx(0.5)
    assert verifier.score_threshold(scores, right) == 0.8


def test_logistic_fit_puts_weight_on_the_informative_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    y = (x[:, 1] + 0.3 * rng.normal(size=400) > 0).astype(float)
    w = verifier.fit_logistic(x, y)
    assert w[1] > 3 and abs(w[0]) < 1


@pytest.mark.skipif(not (SHIPPED / "model.onnx").is_file(), reason="verifier model not built (make models)")
def test_shipped_verifier_takes_a_pair_and_returns_one_logit():
    model = verifier.OnnxVerifier(SHIPPED)
    assert [i.name for i in model.session.get_inputs()] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in model.session.get_outputs()] == ["logits"]
    encoding = model.tokenizer.encode("is it recorded?", "will there be a video")
    assert encoding.type_ids[-1] == 1 and encoding.type_ids[0] == 0
    card = json.loads((SHIPPED / "model.json").read_text())
    assert card["task"] == "verifier" and card["output_dim"] == 1 and card["max_tokens"] == 128
    same = model.logit("How much is the Pro plan per month?", "what does the pro tier cost monthly")
    other = model.logit("How much is the Pro plan per month?", "How much is the Basic plan per month?")
    assert same > other


def test_the_reader_starts_as_a_scaled_cosine_of_the_two_sides():
    torch = pytest.importorskip("torch", reason="the training stages run in .venv-train (torch)")
    from training.verifier_model import CENTRE, SCALE, new_reader

    model = new_reader(1).eval()
    batch = verifier.feeds(verifier.pair_tokenizer(padding=True), [("is it recorded?", "is it recorded?")])
    with torch.no_grad():
        logit = float(model(**batch)[0, 0])
    # The same question on both sides: cos(u, v) is high but below 1 (each side also reads the other).
    assert -SCALE * CENTRE < logit <= SCALE * (1 - CENTRE)
    assert logit > 0
