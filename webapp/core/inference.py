"""The web app's handle on the functions, built once per process from settings."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from embeddings.cards import DEFAULT_EMBEDDING_MODEL, Thresholds, load_card
from embeddings.client import Functions, get_functions


@cache
def functions() -> Functions:
    return get_functions(
        settings.INFERENCE_BACKEND,
        settings.EMBEDDING_MODEL,
        settings.SENTIMENT_MODEL,
        url=settings.INFERENCE_URL,
        names=settings.LAMBDA_FUNCTION_NAMES,
        region=settings.AWS_REGION,
        endpoint_url=settings.LAMBDA_ENDPOINT_URL,
        timeout=settings.INFERENCE_TIMEOUT_S,
    )


@cache
def model_thresholds() -> Thresholds:
    """The embedding model's calibrated thresholds, from its card."""
    card = load_card(settings.EMBEDDING_MODEL or DEFAULT_EMBEDDING_MODEL)
    if card.thresholds is None:
        raise LookupError(f"model {card.name!r} has no calibrated thresholds: run python -m embeddings.calibrate")
    return card.thresholds
