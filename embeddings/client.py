"""The client the web app uses to call the functions, whatever runs them.

One interface, :class:`FunctionClient`; ``local`` runs the handlers in this process (the embedded
default). Remote backends (the function host, a Function URL, AWS Lambda) raise the same
:class:`~embeddings.errors.FunctionError`, so callers retry only what ``retryable`` says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from embeddings.errors import FunctionError, InvalidRequest
from embeddings.payload import decode_vectors


@dataclass(frozen=True)
class Sentiment:
    label: str
    scores: dict[str, float]


class FunctionClient(Protocol):
    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]: ...


def raise_for_error(response: dict[str, Any]) -> dict[str, Any]:
    """Turn a function's error response (Lambda's ``errorType`` shape) into an exception."""
    if "errorType" in response:
        message = response.get("errorMessage", "function error")
        if response["errorType"] in ("InvalidRequest", "ModelNotFound"):
            raise InvalidRequest(message, field=response.get("field"))
        raise FunctionError(message, retryable=True)
    return response


class LocalClient:
    """Calls the handlers in this process; models load on first use and stay loaded."""

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        from embeddings import handlers  # the import loads the models: defer it to first use

        if function not in handlers.FUNCTIONS:
            raise InvalidRequest(f"unknown function {function!r}", field="function")
        return raise_for_error(handlers.FUNCTIONS[function](event, None))


class Functions:
    """Typed calls over any backend."""

    def __init__(self, backend: FunctionClient, embedding_model: str | None = None, sentiment_model: str | None = None) -> None:
        self.backend = backend
        self.embedding_model = embedding_model
        self.sentiment_model = sentiment_model

    def _event(self, texts: list[str], model: str | None, **extra: Any) -> dict[str, Any]:
        event: dict[str, Any] = {"texts": texts, **extra}
        if model:
            event["model"] = model
        return event

    def embed(self, texts: list[str]) -> np.ndarray:
        response = self.backend.invoke("embed", self._event(texts, self.embedding_model, encoding="base64"))
        return decode_vectors(response["embeddings"], response.get("encoding", "json"))

    def sentiment(self, texts: list[str]) -> list[Sentiment]:
        response = self.backend.invoke("sentiment", self._event(texts, self.sentiment_model))
        return [Sentiment(r["label"], r["scores"]) for r in response["results"]]


def get_functions(backend: str = "local", embedding_model: str | None = None, sentiment_model: str | None = None) -> Functions:
    if backend == "local":
        return Functions(LocalClient(), embedding_model, sentiment_model)
    raise ValueError(f"unknown inference backend {backend!r}; this version knows: local")
