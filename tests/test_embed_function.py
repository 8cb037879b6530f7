"""The embedding function (``embeddings.handlers.embed``) through its Lambda interface."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from embeddings import handlers
from embeddings.payload import decode_vectors
from tests.conftest import ROOT

REFERENCE = json.loads((ROOT / "tests" / "data" / "reference_vectors.json").read_text())
# First five numbers of the shipped int8 minilm-l6 vector of REFERENCE["sentences"][0].
GOLDEN_L6 = [-0.0744, -0.0705, -0.0167, -0.0282, 0.0492]


def has_vnni() -> bool:
    """ONNX Runtime's int8 kernels differ by CPU: with VNNI (vpdpbusd) the products sum exactly; the
    AVX2 kernel (vpmaddubsw) saturates pairs of u8 x s8 products at 16 bits, so the same model gives
    slightly different vectors there (seen 2026-12-04 on an AVX2-only AMD EPYC: mean cosine to fp32
    0.988, golden numbers off by up to 0.011)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


VNNI = has_vnni()


def embed(texts: list[str], **extra) -> dict:
    response = handlers.embed({"texts": texts, **extra}, None)
    assert "errorType" not in response, response
    return response


def vectors(texts: list[str], **extra) -> np.ndarray:
    response = embed(texts, **extra)
    return decode_vectors(response["embeddings"], response["encoding"])


def test_response_shape_and_unit_vectors():
    response = embed(["Will the slides be shared?", "Is lunch included?"])
    assert response["model"] == "minilm-l6"
    assert response["dim"] == 384
    assert set(response["timings_ms"]) == {"tokenize", "infer", "total"}
    assert response["timings_ms"]["total"] >= response["timings_ms"]["infer"] > 0
    assert isinstance(response["cold"], bool)
    v = np.asarray(response["embeddings"], dtype=np.float32)
    assert v.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_golden_values_of_the_default_model():
    v = vectors([REFERENCE["sentences"][0]])
    assert np.allclose(v[0, :5], GOLDEN_L6, atol=1e-3 if VNNI else 2e-2)


@pytest.mark.parametrize("model", ["minilm-l6", "minilm-l3"])
def test_int8_model_stays_close_to_its_fp32_original(model):
    """Per-channel int8 stays within cosine 0.97 of the fp32 original on every sentence and 0.99 on
    average (per-tensor scales drifted to a mean of ~0.96)."""
    cosines = []
    for sentence, reference in zip(REFERENCE["sentences"], REFERENCE[model]):
        cosines.append(float(vectors([sentence], model=model)[0] @ np.asarray(reference)))
        assert cosines[-1] > 0.97, sentence
    assert np.mean(cosines) > (0.99 if VNNI else 0.98)


@pytest.mark.parametrize("model", ["minilm-l6", "minilm-l3"])
def test_paraphrase_is_closer_than_an_unrelated_question(model):
    v = vectors(
        [
            "Will the slides be shared after the talk?",
            "Are you going to share the slides afterwards?",
            "Is there parking nearby?",
        ],
        model=model,
    )
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_base64_encoding_carries_the_same_vectors_in_fewer_bytes():
    texts = ["How do you handle schema migrations?", "What is the roadmap for Q3?"]
    as_json = embed(texts)
    as_b64 = embed(texts, encoding="base64")
    assert as_b64["encoding"] == "base64"
    assert all(isinstance(item, str) for item in as_b64["embeddings"])
    np.testing.assert_allclose(
        decode_vectors(as_b64["embeddings"], "base64"), np.asarray(as_json["embeddings"]), atol=1e-7
    )
    assert len(json.dumps(as_b64["embeddings"])) < len(json.dumps(as_json["embeddings"])) / 2


def test_long_text_is_truncated_not_rejected_below_the_character_limit():
    text = ("word " * 60).strip()  # 299 characters
    assert embed([text])["dim"] == 384


def test_a_text_gets_the_same_vector_whatever_else_is_in_the_batch():
    texts = ["Short one?", "A much longer question about the migration plan for the payments database cluster?"]
    batch = vectors(texts)
    for i, text in enumerate(texts):
        np.testing.assert_array_equal(batch[i], vectors([text])[0])


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({}, "texts"),
        ({"texts": "one string"}, "texts"),
        ({"texts": []}, "texts"),
        ({"texts": ["x"] * 65}, "texts"),
        ({"texts": ["ok", 3]}, "texts[1]"),
        ({"texts": ["ok", "   "]}, "texts[1]"),
        ({"texts": ["x" * 301]}, "texts[0]"),
        ({"texts": ["ok"], "encoding": "hex"}, "encoding"),
        ({"texts": ["ok"], "model": "no-such-model"}, "model"),
        ({"texts": ["ok"], "model": "../minilm-l6"}, "model"),
        ({"texts": ["ok"], "model": 7}, "model"),
        ({"texts": ["ok"], "model": "sentiment-minilm-l3"}, "model"),
    ],
)
def test_bad_events_name_the_field_in_lambda_error_shape(event, field):
    response = handlers.embed(event, None)
    assert response["errorType"] in ("InvalidRequest", "ModelNotFound")
    assert response["field"] == field
    assert field.split("[")[0] in response["errorMessage"]


def test_event_that_is_not_an_object_is_an_error_not_a_crash():
    for event in (None, [1, 2], "texts", 42):
        response = handlers.embed(event, None)
        assert response["errorType"] == "InvalidRequest"
        assert response["field"] == "event"


def test_first_call_in_a_fresh_process_is_cold_then_warm():
    script = (
        "import json; from embeddings import handlers as h;"
        "a = h.embed({'texts': ['hi there?']}, None); b = h.embed({'texts': ['hi again?']}, None);"
        "print(json.dumps([a['cold'], b['cold']]))"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, False]


def test_models_load_at_import_and_are_reused_across_calls():
    from embeddings.runtime import get_model

    model = get_model("minilm-l6")
    embed(["one?"])
    embed(["two?"])
    assert get_model("minilm-l6") is model


def test_function_url_http_event_is_unwrapped_and_answered_as_http():
    event = {
        "requestContext": {"http": {"method": "POST"}},
        "body": json.dumps({"texts": ["hi there?"]}),
        "isBase64Encoded": False,
    }
    response = handlers.embed(event, None)
    assert response["statusCode"] == 200
    assert json.loads(response["body"])["dim"] == 384
    import base64

    encoded = {**event, "body": base64.b64encode(b'{"texts": []}').decode(), "isBase64Encoded": True}
    response = handlers.embed(encoded, None)
    assert response["statusCode"] == 400 and json.loads(response["body"])["field"] == "texts"
    response = handlers.embed({**event, "body": "{oops"}, None)
    assert response["statusCode"] == 400 and json.loads(response["body"])["field"] == "body"
