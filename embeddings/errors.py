"""The one exception type the functions and their client raise."""

from __future__ import annotations


class FunctionError(Exception):
    """A call to a function failed.

    ``field`` names the part of the request that was wrong (for bad input); ``retryable`` says
    whether calling again can help (a slow or unavailable function) or not (bad input, a bug).
    """

    error_type = "FunctionError"

    def __init__(self, message: str, *, field: str | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.retryable = retryable


class InvalidRequest(FunctionError):
    error_type = "InvalidRequest"


class ModelNotFound(FunctionError):
    error_type = "ModelNotFound"


class FunctionUnavailable(FunctionError):
    """Slow, down or throttled: calling again later can succeed."""

    error_type = "FunctionUnavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)
