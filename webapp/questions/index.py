"""Per-event FAISS indexes over question vectors, rebuilt from the database whenever stale.

The database is the source of truth: an index is a cache that any process can rebuild. Vectors are
L2-normalised float32, so inner product is cosine similarity; FAISS ids are question primary keys.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import faiss
import numpy as np
from django.db.models import Count, Max

from webapp.questions.models import Question

# One query at a time: FAISS's OpenMP threads only add overhead (at 2 threads a 10k-vector
# search was measured 3x slower than at 1).
faiss.omp_set_num_threads(1)


class VectorIndex:
    """A small typed wrapper: inner product over normalised vectors, ids = database keys."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))

    def __len__(self) -> int:
        return self.index.ntotal

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> None:
        self.index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        if not len(self):
            return []
        scores, ids = self.index.search(np.asarray(vector, dtype=np.float32).reshape(1, -1), min(k, len(self)))
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self, path: str) -> None:
        faiss.write_index(self.index, path)

    @classmethod
    def load(cls, path: str) -> VectorIndex:
        loaded = faiss.read_index(path)
        index = cls(loaded.d)
        index.index = loaded
        return index


@dataclass
class _Cached:
    index: VectorIndex
    count: int
    max_id: int


_cache: dict[int, _Cached] = {}
_lock = threading.Lock()


def _rows(event_id: int, after_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rows = list(Question.objects.filter(event_id=event_id, id__gt=after_id).with_vector().values_list("id", "vector"))
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    vectors = np.stack([np.frombuffer(bytes(r[1]), dtype="<f4") for r in rows])
    return ids, vectors


def event_index(event_id: int, dim: int = 384) -> VectorIndex:
    """The event's index, brought up to date with the database (one aggregate query when fresh)."""
    stats = Question.objects.filter(event_id=event_id).with_vector().aggregate(n=Count("id"), top=Max("id"))
    count, max_id = stats["n"], stats["top"] or 0
    with _lock:
        cached = _cache.get(event_id)
        if cached and cached.count == count and cached.max_id == max_id:
            return cached.index
        if cached and count > cached.count and max_id > cached.max_id:
            ids, vectors = _rows(event_id, after_id=cached.max_id)
            cached.index.add(ids, vectors)
            if len(cached.index) == count:
                cached.count, cached.max_id = count, max_id
                return cached.index
        ids, vectors = _rows(event_id)
        index = VectorIndex(vectors.shape[1] if len(ids) else dim)
        index.add(ids, vectors)
        _cache[event_id] = _Cached(index, len(index), max_id)
        return index


def forget(event_id: int | None = None) -> None:
    """Drop cached indexes (all of them without an id); the next use rebuilds from the database."""
    with _lock:
        if event_id is None:
            _cache.clear()
        else:
            _cache.pop(event_id, None)
