"""Per-event FAISS indexes over question vectors, kept level with the database.

The database is the source of truth: an index is a cache that any process can rebuild. Vectors are
L2-normalised float32, so inner product is cosine similarity; FAISS ids are question primary keys.

Small events get an exact index (IndexFlatIP): free to build, but every search reads every vector,
so its cost grows linearly with the event. From ``settings.INDEX_HNSW_MIN_VECTORS`` vectors on, an
event gets an HNSW graph: a search visits a few thousand vectors, a number that grows slowly with
the size, at the price of a slow build and a recall slightly below 1. ``python manage.py
bench_index`` measures both (figures in docs/app.md).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import faiss
import numpy as np
from django.conf import settings
from django.db.models import Count, Max

from webapp.questions.models import Question, vector_array

# One query at a time: FAISS's OpenMP threads only add overhead (at 2 threads a 10k-vector
# search was measured 3x slower than at 1).
faiss.omp_set_num_threads(1)

# HNSW graph parameters, chosen with `manage.py bench_index` on clustered vectors shaped like
# question embeddings (docs/app.md). M (links per vector) costs about 2*M*4 bytes per vector;
# efConstruction sets the build time; efSearch (candidates kept per search) trades latency for
# recall. At 20k vectors efSearch 128/256/512 gave recall@5 0.986/0.997/0.998 in 0.4/0.7/1.3 ms, and
# recall falls as the graph grows, so 512 keeps a margin above 0.99; M 48 or 64 and efConstruction
# 400 gained nothing at efSearch 512 while building slower.
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 512
# HNSW cannot delete: removed ids stay in the graph as tombstones that searches skip. Past this
# share of the graph they cost recall and time, and the graph is rebuilt without them.
TOMBSTONE_REBUILD_SHARE = 0.1
# A cached index that missed more questions than this is rebuilt rather than patched (and the
# database's limit on query parameters is never approached).
CATCH_UP_MAX_MISSING = 500

Kind = Literal["flat", "hnsw"]


def flat_index(dim: int) -> faiss.IndexIDMap:
    return faiss.IndexIDMap(faiss.IndexFlatIP(dim))


def hnsw_index(dim: int) -> faiss.IndexIDMap:
    graph = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    graph.hnsw.efSearch = HNSW_EF_SEARCH
    return faiss.IndexIDMap(graph)


def kind_of(index: faiss.IndexIDMap) -> Kind:
    return "hnsw" if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW) else "flat"


class VectorIndex:
    """A small typed wrapper: inner product over normalised vectors, ids = database keys.

    Exact below ``hnsw_min_vectors`` live vectors, HNSW from there; ``add`` switches structure as the
    index grows, and a rebuild (after many removals) picks the structure for the size it has then.
    """

    def __init__(self, dim: int, hnsw_min_vectors: int | None = None) -> None:
        self.dim = dim
        self.hnsw_min_vectors = settings.INDEX_HNSW_MIN_VECTORS if hnsw_min_vectors is None else hnsw_min_vectors
        self.index = flat_index(dim)
        self.kind: Kind = "flat"
        self._removed: set[int] = set()
        self._params: faiss.SearchParametersHNSW | None = None
        # The web server is threaded: a search must never run while an add grows (or a switch
        # replaces) the same FAISS index, which may reallocate the memory being read.
        self._lock = threading.RLock()

    def __len__(self) -> int:
        return self.index.ntotal - len(self._removed)

    def ids(self) -> np.ndarray:
        """The ids of the live vectors."""
        with self._lock:
            ids = faiss.vector_to_array(self.index.id_map)
            return ids[~np.isin(ids, list(self._removed))] if self._removed else ids

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if not len(ids):
            return
        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        with self._lock:
            if not self.index.ntotal and vectors.shape[1] != self.dim:
                # An empty index was made before any vector told the model's width (768 for mpnet).
                self.dim = vectors.shape[1]
                self._build(np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32))
            # A re-added id must not stay hidden behind its tombstone.
            revived = bool(self._removed) and not self._removed.isdisjoint(ids.tolist())
            growing_past = self.kind == "flat" and len(self) + len(ids) >= self.hnsw_min_vectors
            if revived or growing_past:
                live_ids, live_vectors = self._live()
                self._build(np.concatenate([live_ids, ids]), np.vstack([live_vectors, vectors]))
            else:
                self.index.add_with_ids(vectors, ids)

    def remove(self, ids: list[int]) -> None:
        ids_array = np.asarray(ids, dtype=np.int64)
        with self._lock:
            if self.kind == "flat":
                self.index.remove_ids(ids_array)
                return
            present = ids_array[np.isin(ids_array, faiss.vector_to_array(self.index.id_map))]
            self._removed.update(present.tolist())
            self._params = self._search_params()
            if len(self._removed) > TOMBSTONE_REBUILD_SHARE * self.index.ntotal:
                self._build(*self._live())

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        with self._lock:
            if not len(self):
                return []
            scores, ids = self.index.search(query, min(k, len(self)), params=self._params)
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i != -1]

    def save(self, path: str) -> None:
        with self._lock:
            if self._removed:  # tombstones live in this object only: write the graph without them
                self._build(*self._live())
            faiss.write_index(self.index, path)

    @classmethod
    def load(cls, path: str) -> VectorIndex:
        loaded = faiss.read_index(path)
        index = cls(loaded.d)
        index.index, index.kind = loaded, kind_of(loaded)
        index._params = index._search_params()
        return index

    def _live(self) -> tuple[np.ndarray, np.ndarray]:
        ids = faiss.vector_to_array(self.index.id_map)
        vectors = self.index.index.reconstruct_n(0, self.index.ntotal).reshape(-1, self.dim)
        if self._removed:
            keep = ~np.isin(ids, list(self._removed))
            ids, vectors = ids[keep], vectors[keep]
        return ids, vectors

    def _build(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        index = hnsw_index(self.dim) if len(ids) >= self.hnsw_min_vectors else flat_index(self.dim)
        if len(ids):
            index.add_with_ids(vectors, ids)
        self.index, self.kind, self._removed = index, kind_of(index), set()
        self._params = self._search_params()

    def _search_params(self) -> faiss.SearchParametersHNSW | None:
        if self.kind == "flat":
            return None
        params = faiss.SearchParametersHNSW(efSearch=HNSW_EF_SEARCH)
        if self._removed:
            # faiss (1.15) keeps the selectors alive with the params; IndexIDMap maps them to our ids.
            removed = np.fromiter(self._removed, dtype=np.int64, count=len(self._removed))
            params.sel = faiss.IDSelectorNot(faiss.IDSelectorBatch(removed))
        return params


@dataclass
class _Cached:
    index: VectorIndex
    count: int
    max_id: int  # never below the highest id in the index, so appending never adds an id twice
    # The latest edit among the indexed questions: an edited question keeps its id but gets a new
    # vector, which neither the count nor the highest id shows.
    edited: datetime | None = None


# An index is one event's vectors of one model: (event id, model name). A process that changes model
# (EMBEDDING_MODEL) searches a new index holding only the vectors made by the new model, which
# `manage.py reindex` fills by embedding the event's questions again; spaces never mix.
Key = tuple[int, str]


# Least recently used first. The cache is bounded by the vectors it holds (INDEX_CACHE_MAX_VECTORS,
# 1.5 KB each at 384 dimensions): a process that has served many events drops the ones it used
# longest ago, and rebuilds one from the database if it comes back.
_cache: OrderedDict[Key, _Cached] = OrderedDict()
# One lock per event: building a large event's HNSW graph takes seconds and must not hold up the
# searches of every other event in the process.
_event_locks: dict[Key, threading.Lock] = {}
_lock = threading.Lock()  # guards _event_locks and forget()


def _event_lock(key: Key) -> threading.Lock:
    with _lock:
        return _event_locks.setdefault(key, threading.Lock())


def _stored(key: Key):
    """The questions the index holds: those with a vector of ``model``, except withdrawn ones."""
    event_id, model = key
    return Question.objects.filter(event_id=event_id).with_vector(model).exclude(status=Question.Status.WITHDRAWN)


def _rows(key: Key, after_id: int = 0, only: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    rows = _stored(key).filter(id__gt=after_id)
    if only is not None:
        rows = rows.filter(id__in=only)
    pairs = list(rows.values_list("id", "vector"))
    if not pairs:
        return np.empty(0, dtype=np.int64), np.empty((0, 0), dtype=np.float32)
    ids = np.array([r[0] for r in pairs], dtype=np.int64)
    vectors = np.stack([vector_array(r[1]) for r in pairs])
    return ids, vectors


def _catch_up(key: Key, cached: _Cached, count: int, max_id: int) -> bool:
    """Bring a cached index level with the database in place; False when it needs a rebuild.

    Rebuilding an HNSW graph takes seconds to minutes, so deletions and questions processed out of
    id order (a retry) are patched in by diffing ids rather than by rebuilding.
    """
    if count > cached.count and max_id > cached.max_id:  # the usual case: new questions appended
        ids, vectors = _rows(key, after_id=cached.max_id)
        cached.index.add(ids, vectors)
        cached.max_id = max(max_id, int(ids.max()) if len(ids) else 0)
        if len(cached.index) == count:
            cached.count = count
            return True
    stored = np.fromiter(_stored(key).values_list("id", flat=True), dtype=np.int64)
    indexed = cached.index.ids()
    missing = np.setdiff1d(stored, indexed)
    if len(missing) > CATCH_UP_MAX_MISSING:
        return False
    cached.index.remove(np.setdiff1d(indexed, stored).tolist())
    ids, vectors = _rows(key, only=missing.tolist())
    cached.index.add(ids, vectors)
    # The index now holds exactly the stored ids (unless a row vanished meanwhile: rebuild then).
    cached.count, cached.max_id = len(cached.index), int(stored.max()) if len(stored) else 0
    return cached.count == len(stored)


def event_index(event_id: int, model: str, dim: int = 384) -> VectorIndex:
    """The event's index of ``model``'s vectors, level with the database (one aggregate query when fresh)."""
    key = (event_id, model)
    stats = _stored(key).aggregate(n=Count("id"), top=Max("id"), edited=Max("edited_at"))
    count, max_id, edited = stats["n"], stats["top"] or 0, stats["edited"]
    with _event_lock(key):
        cached = _cache.get(key)
        # An edit is rare (its asker's first minutes only): a cache that missed one is rebuilt.
        if cached and cached.edited != edited:
            cached = None
        if cached and cached.count == count and cached.max_id == max_id:
            return _used(key, cached).index
        if cached and _catch_up(key, cached, count, max_id):
            return _used(key, cached).index
        ids, vectors = _rows(key)
        index = VectorIndex(vectors.shape[1] if len(ids) else dim)
        index.add(ids, vectors)
        return _used(key, _Cached(index, len(index), int(ids.max()) if len(ids) else 0, edited)).index


def _used(key: Key, cached: _Cached) -> _Cached:
    """Keep ``cached`` as the most recently used, and drop the least recently used past the bound."""
    with _lock:
        _cache[key] = cached
        _cache.move_to_end(key)
        budget = settings.INDEX_CACHE_MAX_VECTORS
        total = sum(c.count for c in _cache.values())
        while total > budget and len(_cache) > 1:
            _, dropped = _cache.popitem(last=False)
            total -= dropped.count
    return cached


def cached_vectors() -> tuple[int, int]:
    """(indexes, vectors) this process holds in its cache."""
    with _lock:
        return len(_cache), sum(c.count for c in _cache.values())


def forget(event_id: int | None = None) -> None:
    """Drop this process's cached indexes (all of them without an id); the next use rebuilds them."""
    with _lock:
        for key in [k for k in _cache if event_id is None or k[0] == event_id]:
            del _cache[key]
