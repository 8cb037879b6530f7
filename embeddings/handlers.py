"""AWS Lambda handlers: ``embeddings.handlers.embed``, ``.sentiment`` and ``.verify``.

Each handler parses the event, calls the model, and returns a JSON-able dict. Models load once per
process, at import time (Lambda's init phase), never per request; nothing here touches the network.
Bad events never raise: they return Lambda's error shape ``{"errorType", "errorMessage"}`` plus
``"field"``, the part of the event that was wrong. Behind a Function URL (an HTTP event) the same
JSON travels in the body and comes back in an HTTP response (400 for a bad request).
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from embeddings import slots
from embeddings.cards import DEFAULT_EMBEDDING_MODEL, DEFAULT_SENTIMENT_MODEL, DEFAULT_VERIFIER_MODEL, available
from embeddings.errors import FunctionError, InvalidRequest
from embeddings.payload import ENCODINGS, encode_vectors
from embeddings.runtime import Model, Timings, get_model

MAX_TEXTS = 64
MAX_MODEL_NAME = 100  # a directory name; the file system refuses long ones with an OSError


def max_chars() -> int:
    value = os.environ.get("EMBEDDINGS_MAX_CHARS", "300")
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"EMBEDDINGS_MAX_CHARS must be a positive whole number, got {value!r}")
    return int(value)


MAX_CHARS = max_chars()
_state = {"calls": 0}


def _texts(event: dict[str, Any]) -> list[str]:
    texts = event.get("texts")
    if texts is None:
        raise InvalidRequest("texts: required, a list of 1 to 64 strings", field="texts")
    if not isinstance(texts, list):
        raise InvalidRequest(f"texts: must be a list of strings, got {type(texts).__name__}", field="texts")
    if not 1 <= len(texts) <= MAX_TEXTS:
        raise InvalidRequest(f"texts: must hold 1 to {MAX_TEXTS} strings, got {len(texts)}", field="texts")
    for i, text in enumerate(texts):
        where = f"texts[{i}]"
        if not isinstance(text, str):
            raise InvalidRequest(f"{where}: must be a string, got {type(text).__name__}", field=where)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # JSON's "\ud800" parses, but no tokenizer takes it
            raise InvalidRequest(f"{where}: not valid Unicode (lone surrogate)", field=where) from None
        if not text.strip():
            raise InvalidRequest(f"{where}: must not be empty", field=where)
        if len(text) > MAX_CHARS:
            raise InvalidRequest(f"{where}: {len(text)} characters, at most {MAX_CHARS} allowed", field=where)
    return texts


def _pairs(event: dict[str, Any]) -> list[tuple[str, str]]:
    pairs = event.get("pairs")
    if not isinstance(pairs, list) or not 1 <= len(pairs) <= MAX_TEXTS:
        raise InvalidRequest(f"pairs: required, a list of 1 to {MAX_TEXTS} [question, question] pairs", field="pairs")
    for i, pair in enumerate(pairs):
        if not isinstance(pair, list) or len(pair) != 2:
            raise InvalidRequest(f"pairs[{i}]: must be a list of two strings", field=f"pairs[{i}]")
        try:
            _texts({"texts": pair})  # the same rules as any text
        except InvalidRequest as exc:
            field = exc.field.replace("texts", f"pairs[{i}]", 1) if exc.field else f"pairs[{i}]"
            raise InvalidRequest(exc.message.replace("texts", f"pairs[{i}]", 1), field=field) from None
    return [(a, b) for a, b in pairs]


def _model(event: dict[str, Any], task: str, default: str) -> Model:
    name = event.get("model", default)
    if not isinstance(name, str):
        raise InvalidRequest("model: must be a string", field="model")
    if len(name) > MAX_MODEL_NAME:
        raise InvalidRequest(f"model: at most {MAX_MODEL_NAME} characters, got {len(name)}", field="model")
    model = get_model(name)
    if model.card.task != task:
        raise InvalidRequest(f"model: {name!r} is a {model.card.task} model, not {task}", field="model")
    return model


def _encoding(event: dict[str, Any]) -> str:
    encoding = event.get("encoding", "json")
    if encoding not in ENCODINGS:
        raise InvalidRequest(f"encoding: must be one of {list(ENCODINGS)}, got {encoding!r}", field="encoding")
    return encoding


def _error(exc: FunctionError) -> dict[str, Any]:
    return {"errorType": exc.error_type, "errorMessage": exc.message, "field": exc.field}


def _handle(work: Callable[[dict[str, Any], Timings], dict[str, Any]], event: Any) -> dict[str, Any]:
    start = time.perf_counter()
    cold = _state["calls"] == 0
    _state["calls"] += 1
    try:
        if not isinstance(event, dict):
            raise InvalidRequest(f"event: must be a JSON object, got {type(event).__name__}", field="event")
        timings = Timings()
        response = work(event, timings)
    except FunctionError as exc:
        return _error(exc)
    response["timings_ms"] = timings.as_dict((time.perf_counter() - start) * 1000)
    response["cold"] = cold
    return response


def _embed(event: dict[str, Any], timings: Timings) -> dict[str, Any]:
    texts = _texts(event)
    model = _model(event, "embedding", DEFAULT_EMBEDDING_MODEL)
    encoding = _encoding(event)
    vectors = model.embed(texts, timings)
    return {
        "model": model.card.name,
        "dim": int(vectors.shape[1]),
        "encoding": encoding,
        "embeddings": encode_vectors(vectors, encoding),
    }


def _sentiment(event: dict[str, Any], timings: Timings) -> dict[str, Any]:
    texts = _texts(event)
    model = _model(event, "sentiment", DEFAULT_SENTIMENT_MODEL)
    probabilities = model.classify(texts, timings)
    labels = model.card.labels
    results = [
        {"label": labels[int(row.argmax())], "scores": {label: round(float(p), 6) for label, p in zip(labels, row)}}
        for row in probabilities
    ]
    return {"model": model.card.name, "results": results}


def _verify(event: dict[str, Any], timings: Timings) -> dict[str, Any]:
    pairs = _pairs(event)
    model = _model(event, "verifier", DEFAULT_VERIFIER_MODEL)
    logits = model.verify(pairs, timings)
    probabilities = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return {
        "model": model.card.name,
        "results": [
            {"logit": round(float(x), 5), "probability": round(float(p), 6), "conflict": slots.conflict(a, b)}
            for (a, b), x, p in zip(pairs, logits, probabilities)
        ],
    }


def is_http_event(event: Any) -> bool:
    """A Lambda Function URL / API Gateway proxy event, rather than a direct invocation."""
    return isinstance(event, dict) and "requestContext" in event and "texts" not in event


def _handle_http(work: Callable[[dict[str, Any], Timings], dict[str, Any]], event: dict[str, Any]) -> dict[str, Any]:
    """Unwrap the JSON body of an HTTP event, and wrap the answer as an HTTP response."""
    body = event.get("body") or ""
    try:
        if not isinstance(body, str):
            raise InvalidRequest(f"body: must be a string, got {type(body).__name__}", field="body")
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8")
        parsed = json.loads(body)
    except InvalidRequest as exc:
        response = _error(exc)
    except (ValueError, RecursionError):  # bad JSON, base64 or UTF-8; an integer over the digit limit; deep nesting
        response = _error(InvalidRequest("body: not valid JSON", field="body"))
    else:
        response = _handle(work, parsed)
    status = 400 if response.get("errorType") else 200
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(response)}


def embed(event: Any, context: Any = None) -> dict[str, Any]:
    """Sentence vectors: ``{"texts": [...], "model"?, "encoding"?: "json"|"base64"}``."""
    return _handle_http(_embed, event) if is_http_event(event) else _handle(_embed, event)


def sentiment(event: Any, context: Any = None) -> dict[str, Any]:
    """Sentiment labels and probabilities: ``{"texts": [...], "model"?}``."""
    return _handle_http(_sentiment, event) if is_http_event(event) else _handle(_sentiment, event)


def verify(event: Any, context: Any = None) -> dict[str, Any]:
    """Whether two questions are the same question: ``{"pairs": [[new, earlier], ...], "model"?}``.

    Each result: the pair reader's ``logit`` and ``probability``, and ``conflict``: why the pair
    cannot be one question whatever the reader says (other numbers; ``embeddings.slots``), or null.
    """
    return _handle_http(_verify, event) if is_http_event(event) else _handle(_verify, event)


FUNCTIONS: dict[str, Callable[[Any, Any], dict[str, Any]]] = {"embed": embed, "sentiment": sentiment, "verify": verify}


def _preload() -> None:
    """Load the models this process will serve during init, so the first request is warm.

    ``EMBEDDINGS_PRELOAD`` is a comma-separated list of model names (a Lambda function sets the
    one it serves); empty disables preloading. By default the default models load (the verifier
    where one is shipped).
    """
    verifier = DEFAULT_VERIFIER_MODEL if DEFAULT_VERIFIER_MODEL in available("verifier") else ""
    names = os.environ.get("EMBEDDINGS_PRELOAD", f"{DEFAULT_EMBEDDING_MODEL},{DEFAULT_SENTIMENT_MODEL},{verifier}")
    for name in filter(None, (n.strip() for n in names.split(","))):
        get_model(name)


_preload()
