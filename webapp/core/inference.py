"""The web app's handle on the functions, built once per process from settings."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache

from django.conf import settings

from embeddings.cards import DEFAULT_EMBEDDING_MODEL, Thresholds, available, load_card
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


def embedding_model() -> str:
    """The name of the embedding model in force: stored with every vector, and the key of the indexes."""
    return settings.EMBEDDING_MODEL or DEFAULT_EMBEDDING_MODEL


@cache
def model_thresholds() -> Thresholds:
    """The embedding model's calibrated thresholds, from its card."""
    card = load_card(embedding_model())
    if card.thresholds is None:
        raise LookupError(f"model {card.name!r} has no calibrated thresholds: run python -m training.calibrate")
    return card.thresholds


@dataclass(frozen=True)
class Verifier:
    """How the pair reader decides on a best match, from the embedding model's card (``verifier``).

    A best match at or above ``gate`` (cosine) is read together with the new question; it is a
    duplicate when ``sigmoid(w_cosine * cosine + w_logit * logit + bias)`` >= ``duplicate``, unless
    ``veto`` and the function found a conflict (the two questions give other numbers).
    """

    model: str
    gate: float
    duplicate: float
    w_cosine: float = 0.0
    w_logit: float = 1.0
    bias: float = 0.0
    veto: bool = False

    def score(self, cosine: float, logit: float) -> float:
        return 1.0 / (1.0 + math.exp(-(self.w_cosine * cosine + self.w_logit * logit + self.bias)))


@cache
def verifier() -> Verifier | None:
    """The verifier in force, or None: switched off (``VERIFIER_MODEL=none``), or not calibrated for this model."""
    if settings.VERIFIER_MODEL.lower() == "none":
        return None
    config = load_card(embedding_model()).raw.get("verifier")
    if not config and settings.VERIFIER_MODEL:  # named but not calibrated for this model yet (a replay will)
        config = {"model": settings.VERIFIER_MODEL, "gate": 0.5, "duplicate": 0.5}
    if not config:
        return None
    name = settings.VERIFIER_MODEL or config["model"]
    if name not in available("verifier"):
        return None
    combine = load_card(name).raw.get("combine", {})
    return Verifier(
        model=name,
        gate=float(config["gate"]),
        duplicate=float(config["duplicate"]),
        w_cosine=float(combine.get("w_cosine", 0.0)),
        w_logit=float(combine.get("w_logit", 1.0)),
        bias=float(combine.get("bias", 0.0)),
        veto=bool(config.get("veto", False)),
    )
