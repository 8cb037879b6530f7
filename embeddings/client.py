"""The client the web app uses to call the functions, whatever runs them.

One interface, :class:`FunctionClient`, over three backends:

- ``local``: the handlers in this process (the embedded default);
- ``http``: any URL that takes the event as a JSON body: the function host
  (``http://127.0.0.1:9000``), a Lambda Function URL, a Cloud Function;
- ``lambda``: boto3's ``lambda.invoke`` by function name (AWS, or any ``endpoint_url`` that speaks
  the Invoke API, such as the function host).

Every backend raises :class:`~embeddings.errors.FunctionError`: ``retryable`` is True for what
calling again can fix (connection refused, timeouts, 5xx, throttling, a crashed function) and
False for bad input (``InvalidRequest``), so callers retry only what can succeed.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from embeddings.errors import FunctionError, FunctionUnavailable, InvalidRequest
from embeddings.payload import decode_vectors


@dataclass(frozen=True)
class Sentiment:
    label: str
    scores: dict[str, float]


@dataclass(frozen=True)
class Verdict:
    logit: float  # the pair reader's: > 0 leans "the same question"
    conflict: str | None  # why the two cannot be one question (other numbers), or None


class FunctionClient(Protocol):
    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]: ...


def raise_for_error(response: dict[str, Any]) -> dict[str, Any]:
    """Turn a function's error response (Lambda's ``errorType`` shape) into an exception."""
    if "errorType" in response:
        message = response.get("errorMessage", "function error")
        if response["errorType"] in ("InvalidRequest", "ModelNotFound"):
            raise InvalidRequest(message, field=response.get("field"))
        raise FunctionUnavailable(message)
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

    def __init__(
        self, backend: FunctionClient, embedding_model: str | None = None, sentiment_model: str | None = None
    ) -> None:
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

    def verify(self, pairs: list[tuple[str, str]], model: str | None = None) -> list[Verdict]:
        """The verifier's reading of each (new, earlier) pair."""
        event: dict[str, Any] = {"pairs": [list(p) for p in pairs]}
        if model:
            event["model"] = model
        response = self.backend.invoke("verify", event)
        return [Verdict(float(r["logit"]), r.get("conflict")) for r in response["results"]]

    def sentiment(self, texts: list[str]) -> list[Sentiment]:
        response = self.backend.invoke("sentiment", self._event(texts, self.sentiment_model))
        return [Sentiment(r["label"], r["scores"]) for r in response["results"]]


class HttpClient:
    """POSTs the event as JSON. ``url`` is a template with ``{function}``, or the function host's root.

    One keep-alive connection per thread (stdlib ``http.client``: a third of urllib3's overhead per
    call, measured on loopback), with TCP_NODELAY so small requests are not held back.
    """

    def __init__(self, url: str, timeout: float = 10.0, connect_timeout: float = 2.0) -> None:
        if "{function}" not in url:
            url = url.rstrip("/") + "/functions/{function}"
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.url = url
        self.scheme = parts.scheme
        self.netloc = parts.netloc
        self.host = parts.hostname
        self.port = parts.port
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            cls = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
            connection = cls(self.host, self.port, timeout=self.connect_timeout)
            connection.connect()
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection.sock.settimeout(self.timeout)
            self.local.connection = connection
        return connection

    def _drop_connection(self) -> None:
        connection = getattr(self.local, "connection", None)
        if connection is not None:
            connection.close()
            self.local.connection = None

    def _post(self, path: str, body: bytes) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json", "Host": self.netloc}
        for attempt in (1, 2):
            reused = getattr(self.local, "connection", None) is not None
            try:
                connection = self._connection()
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self._drop_connection()
                if reused and attempt == 1:
                    continue  # the server closed an idle keep-alive connection: the call never ran
                raise
            except Exception:
                self._drop_connection()
                raise
            if response.will_close:
                self._drop_connection()
            return response.status, data
        raise AssertionError("unreachable")

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        url = self.url.format(function=function)
        path = url[url.index(self.netloc) + len(self.netloc) :] or "/"
        try:
            status, data = self._post(path, json.dumps(event).encode())
        except (OSError, http.client.HTTPException) as exc:
            raise FunctionUnavailable(f"{function}: {type(exc).__name__}: {exc}") from None
        try:
            body = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            body = {}
        if status == 200 and body and "errorType" not in body:
            return body
        message = body.get("errorMessage") or body.get("message") or f"HTTP {status}"
        if body.get("errorType") in ("InvalidRequest", "ModelNotFound"):
            raise InvalidRequest(message, field=body.get("field"))
        if status >= 500 or status in (200, 429):
            raise FunctionUnavailable(f"{function}: {message}")
        raise FunctionError(f"{function}: {message}")


class LambdaClient:
    """boto3's Lambda client; ``endpoint_url`` aims it at anything that speaks the Invoke API."""

    PERMANENT = frozenset(
        {
            "ResourceNotFoundException",
            "InvalidRequestContentException",
            "RequestTooLargeException",
            "InvalidParameterValueException",
            "AccessDeniedException",
            "UnrecognizedClientException",
        }
    )

    def __init__(
        self,
        names: str = "{function}",
        region: str | None = None,
        endpoint_url: str | None = None,
        timeout: float = 10.0,
        connect_timeout: float = 2.0,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.names = names
        config = Config(
            connect_timeout=connect_timeout, read_timeout=timeout, retries={"max_attempts": 0}, max_pool_connections=32
        )
        session = boto3.session.Session()
        credentials: dict[str, str] = {}
        if endpoint_url and session.get_credentials() is None:
            # A local Invoke API needs a signature, not real credentials.
            credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        self.lambda_ = session.client(
            "lambda",
            region_name=region or os.environ.get("AWS_REGION") or "us-east-1",
            endpoint_url=endpoint_url,
            config=config,
            **credentials,
        )

    def invoke(self, function: str, event: dict[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        name = self.names.format(function=function)
        try:
            response = self.lambda_.invoke(FunctionName=name, Payload=json.dumps(event).encode())
            payload = response["Payload"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            if code in self.PERMANENT:
                raise FunctionError(f"{name}: {code}: {exc}") from None
            raise FunctionUnavailable(f"{name}: {code}: {exc}") from None
        except BotoCoreError as exc:  # connection refused, timeouts, no credentials...
            raise FunctionUnavailable(f"{name}: {type(exc).__name__}: {exc}") from None
        body = json.loads(payload) if payload else {}
        if response.get("FunctionError"):
            raise FunctionUnavailable(f"{name}: {body.get('errorType')}: {body.get('errorMessage')}")
        return raise_for_error(body)


def get_functions(
    backend: str = "local",
    embedding_model: str | None = None,
    sentiment_model: str | None = None,
    *,
    url: str | None = None,
    names: str = "{function}",
    region: str | None = None,
    endpoint_url: str | None = None,
    timeout: float = 10.0,
) -> Functions:
    """The functions over one backend: ``local``, ``http`` (needs ``url``) or ``lambda``."""
    if backend == "local":
        client: FunctionClient = LocalClient()
    elif backend == "http":
        if not url:
            raise ValueError("the http backend needs a url (the function host's root or a template with {function})")
        client = HttpClient(url, timeout=timeout)
    elif backend == "lambda":
        client = LambdaClient(names, region=region, endpoint_url=endpoint_url, timeout=timeout)
    else:
        raise ValueError(f"unknown inference backend {backend!r}: local, http or lambda")
    return Functions(client, embedding_model, sentiment_model)
