"""Vectors on the wire: JSON float lists, or base64 little-endian float32 (4 bytes a number)."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

ENCODINGS = ("json", "base64")


def encode_vectors(vectors: np.ndarray, encoding: str) -> list[Any]:
    if encoding == "base64":
        little_endian = vectors.astype("<f4", copy=False)
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in little_endian]
    return vectors.tolist()


def decode_vectors(payload: list[Any], encoding: str) -> np.ndarray:
    """The inverse of :func:`encode_vectors`: float32 [n, dim]."""
    if encoding == "base64":
        return np.stack([np.frombuffer(base64.b64decode(item), dtype="<f4") for item in payload]).astype(np.float32)
    return np.asarray(payload, dtype=np.float32)
