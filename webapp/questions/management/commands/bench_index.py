"""Flat against HNSW per-event indexes at growing sizes: build time, size, latency, recall@5.

No database, no network: the vectors are synthetic, shaped like question embeddings. Random unit
vectors would be a poor model (in 384 dimensions they are all nearly orthogonal, which makes HNSW
look worse and flat no different); real question embeddings are clustered and anisotropic. Each
vector here is the normalised sum of four parts, each Gaussian over a decaying spectrum (variance
of dimension i proportional to i^-SPECTRUM_BETA):

- a direction shared by every vector (all questions of an event have something in common),
- its topic's centre (at most MAX_TOPICS topics, one per 8 vectors below that),
- its cluster's centre (about POINTS_PER_CLUSTER paraphrases of one question per cluster),
- noise, scaled per cluster (some questions are paraphrased tightly, some loosely).

The shares below were fitted to the minilm-l6 embeddings of the 3,351 hand-written questions in
training/data/event_pairs/pools*.json (1,147 paraphrase clusters in 453 topics): mean
cosine 0.17 between any two questions, 0.40 within a topic, 0.64 between paraphrases, and an
effective dimension (participation ratio) of 63; these vectors give 0.17, 0.40, 0.64 and 67.

Clusters are local to a chunk of CHUNK vectors, so paraphrases of one question arrive close
together, as they do during an event, and 1M vectors never sit in memory outside the index.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import faiss
import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp.questions import index as question_index

DIM = 384
K = 5
CHUNK = 20_000
MAX_TOPICS = 4096
POINTS_PER_CLUSTER = 3
SPECTRUM_BETA = 0.8
SHARED, TOPIC, CLUSTER, NOISE = 0.17, 0.23, 0.24, 0.36  # variance shares, summing to 1
NOISE_SPREAD = 0.5  # per-cluster noise scale is uniform in 1 +- this
WARMUP_QUERIES = 10


@dataclass(frozen=True)
class Corpus:
    """A deterministic stream of clustered unit vectors, with held-out queries from the same clusters."""

    size: int
    queries: int
    dim: int = DIM
    seed: int = 0

    def _parts(self, rng: np.random.Generator, rows: int) -> np.ndarray:
        spectrum = np.arange(1, self.dim + 1, dtype=np.float32) ** (-SPECTRUM_BETA / 2)
        spectrum /= np.sqrt((spectrum**2).sum())  # expected squared norm 1
        return rng.standard_normal((rows, self.dim), dtype=np.float32) * spectrum

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """(ids, vectors, queries) per chunk; queries are extra members of the chunk's clusters."""
        rng = np.random.default_rng(self.seed)
        shared = self._parts(rng, 1)[0]
        shared /= np.linalg.norm(shared)
        topics = self._parts(rng, min(MAX_TOPICS, max(1, self.size // 8)))
        bounds = np.arange(0, self.size + CHUNK, CHUNK).clip(max=self.size)
        query_bounds = np.round(bounds / self.size * self.queries).astype(int)
        for j in range(len(bounds) - 1):
            rows, held_out = int(bounds[j + 1] - bounds[j]), int(query_bounds[j + 1] - query_bounds[j])
            chunk_rng = np.random.default_rng([self.seed, j + 1])
            vectors = self._members(chunk_rng, shared, topics, rows + held_out)
            ids = np.arange(bounds[j], bounds[j + 1], dtype=np.int64)
            yield ids, vectors[:rows], vectors[rows:]

    def _members(self, rng: np.random.Generator, shared: np.ndarray, topics: np.ndarray, n: int) -> np.ndarray:
        clusters = max(1, n // POINTS_PER_CLUSTER)
        centres = np.sqrt(TOPIC) * topics[rng.integers(0, len(topics), clusters)]
        centres += np.sqrt(CLUSTER) * self._parts(rng, clusters)
        noise_scale = np.sqrt(NOISE) * rng.uniform(1 - NOISE_SPREAD, 1 + NOISE_SPREAD, clusters).astype(np.float32)
        member_of = rng.integers(0, clusters, n)
        vectors = self._parts(rng, n)
        vectors *= noise_scale[member_of, None]
        vectors += centres[member_of]
        vectors += np.sqrt(SHARED) * shared
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors


def serialized_bytes(index: faiss.Index) -> int:
    """The size of the written index (vectors, graph, id map), counted without holding a copy."""
    total = 0

    def count(chunk: bytes) -> None:
        nonlocal total
        total += len(chunk)

    faiss.write_index(index, faiss.PyCallbackIOWriter(count))
    return total


def latencies_ms(index: faiss.Index, queries: np.ndarray) -> list[float]:
    """One query at a time, as the app searches."""
    for query in queries[:WARMUP_QUERIES]:
        index.search(query[None, :], K)
    times = []
    for query in queries:
        start = time.perf_counter()
        index.search(query[None, :], K)
        times.append((time.perf_counter() - start) * 1000)
    return times


def measure(corpus: Corpus, make: Callable[[int], faiss.Index]) -> tuple[dict[str, float], np.ndarray]:
    """Build one structure over the corpus; its figures and its top-K ids for every query."""
    index, build_s, queries = make(corpus.dim), 0.0, []
    for ids, vectors, held_out in corpus.chunks():
        start = time.perf_counter()  # generating the vectors is not building the index
        index.add_with_ids(vectors, ids)
        build_s += time.perf_counter() - start
        queries.append(held_out)
    query_matrix = np.vstack(queries)
    ms = latencies_ms(index, query_matrix)
    _, top = index.search(query_matrix, K)
    figures = {
        "build_s": round(build_s, 3),
        "index_bytes": serialized_bytes(index),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }
    return figures, top


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found.tolist(), exact.tolist()))
    return round(hits / exact.size, 4)


def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--sizes must be whole numbers separated by commas, got {text!r}") from None
    if not sizes or min(sizes) <= K:
        raise CommandError(f"--sizes needs sizes above {K}, got {text!r}")
    return sizes


class Command(BaseCommand):
    help = (
        "Benchmark the per-event index structures on synthetic clustered question vectors: for each size, "
        "build time (s), serialized index size (bytes), one-at-a-time query latency p50/p99 (ms, 1 thread) "
        "of the exact flat index and of HNSW, and HNSW's recall@5 against the exact results."
    )
    requires_system_checks = []  # no database: nothing to check

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sizes", default="10000,100000,1000000", help="vectors per index, comma-separated")
        parser.add_argument("--queries", type=int, default=1000, help="timed queries per structure and size")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, sizes: str, queries: int, seed: int, as_json: bool, **options) -> None:
        if queries < 1:
            raise CommandError(f"--queries must be at least 1, got {queries}")
        faiss.omp_set_num_threads(1)  # as in the app (importing the index module already did)
        results = []
        for size in parse_sizes(sizes):
            corpus = Corpus(size, queries, seed=seed)
            flat, exact = measure(corpus, question_index.flat_index)
            hnsw, found = measure(corpus, question_index.hnsw_index)
            hnsw["recall_at_5"] = recall(found, exact)
            results.append({"size": size, "flat": flat, "hnsw": hnsw})
            self.stdout.write(self._line(size, flat, hnsw))  # a 1M run takes long: show each size as it ends
            self.stdout.flush()
        summary = {
            "sizes": [r["size"] for r in results],
            "results": results,
            "switch_at": settings.INDEX_HNSW_MIN_VECTORS,
            "dim": DIM,
            "queries": queries,
            "hnsw_params": {
                "M": question_index.HNSW_M,
                "ef_construction": question_index.HNSW_EF_CONSTRUCTION,
                "ef_search": question_index.HNSW_EF_SEARCH,
            },
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        }
        if as_json:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(f"the app switches to HNSW at {summary['switch_at']} vectors (INDEX_HNSW_MIN_VECTORS)")

    def _line(self, size: int, flat: dict[str, float], hnsw: dict[str, float]) -> str:
        return (
            f"{size} vectors: flat build {flat['build_s']} s, {flat['index_bytes'] / 2**20:.1f} MiB, "
            f"p50 {flat['p50_ms']} ms, p99 {flat['p99_ms']} ms | HNSW build {hnsw['build_s']} s, "
            f"{hnsw['index_bytes'] / 2**20:.1f} MiB, p50 {hnsw['p50_ms']} ms, p99 {hnsw['p99_ms']} ms, "
            f"recall@5 {hnsw['recall_at_5']}"
        )
