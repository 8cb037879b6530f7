"""The per-event index switches from exact search to HNSW as an event grows, and stays correct."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from webapp.events.models import Event
from webapp.questions import index
from webapp.questions.index import VectorIndex
from webapp.questions.management.commands.bench_index import Corpus
from webapp.questions.models import Question

MODEL = "minilm-l6"

THRESHOLD = 200


@pytest.fixture(autouse=True)
def _small_threshold(settings):
    settings.INDEX_HNSW_MIN_VECTORS = THRESHOLD
    index.forget()
    yield
    index.forget()


def clustered(n: int, queries: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Vectors shaped like question embeddings, and queries from the same clusters."""
    _, vectors, held_out = next(Corpus(n, queries, seed=7).chunks())
    return vectors, held_out


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int = 5) -> list[int]:
    return ids[np.argsort(-(vectors @ query), kind="stable")[:k]].tolist()


def found(vector_index: VectorIndex, query: np.ndarray, k: int = 5) -> list[int]:
    return [qid for qid, _ in vector_index.search(query, k)]


def test_index_switches_to_hnsw_past_the_threshold_and_finds_the_exact_neighbours():
    vectors, queries = clustered(300)
    ids = np.arange(1000, 1300)
    vector_index = VectorIndex(vectors.shape[1])
    vector_index.add(ids[:150], vectors[:150])
    assert vector_index.kind == "flat" and len(vector_index) == 150
    vector_index.add(ids[150:], vectors[150:])
    assert vector_index.kind == "hnsw" and len(vector_index) == 300
    for query in queries:
        assert found(vector_index, query) == exact_top(vectors, ids, query)


def test_removed_ids_never_come_back_from_hnsw_and_many_removals_rebuild_the_graph():
    vectors, queries = clustered(400)
    ids = np.arange(1, 401)
    vector_index = VectorIndex(vectors.shape[1])
    vector_index.add(ids, vectors)
    assert vector_index.kind == "hnsw"
    nearest = found(vector_index, queries[0])[0]
    vector_index.remove([nearest, 10_000])  # an unknown id is ignored, as in the flat index
    assert len(vector_index) == 399
    keep = ids != nearest
    assert found(vector_index, queries[0]) == exact_top(vectors[keep], ids[keep], queries[0])
    vector_index.add(np.array([nearest]), vectors[nearest - 1 : nearest])  # back behind its tombstone
    assert found(vector_index, vectors[nearest - 1], 1) == [nearest] and len(vector_index) == 400

    gone = set(ids[:60].tolist()) | {nearest}
    vector_index.remove(sorted(gone))
    assert len(vector_index) == vector_index.index.ntotal == 400 - len(gone)  # tombstones dropped by a rebuild
    assert vector_index.kind == "hnsw"
    for query in queries:
        assert not gone & set(found(vector_index, query, 20))


def test_removing_below_the_threshold_goes_back_to_the_exact_index():
    vectors, _ = clustered(220)
    ids = np.arange(1, 221)
    vector_index = VectorIndex(vectors.shape[1])
    vector_index.add(ids, vectors)
    vector_index.remove(ids[:100].tolist())
    assert vector_index.kind == "flat" and len(vector_index) == 120
    assert found(vector_index, vectors[150]) == exact_top(vectors[100:], ids[100:], vectors[150])


@pytest.mark.parametrize("size", [150, 300])
def test_save_and_load_keep_the_structure_ids_and_results(tmp_path: Path, size: int):
    vectors, queries = clustered(size)
    ids = np.arange(5000, 5000 + size)
    vector_index = VectorIndex(vectors.shape[1])
    vector_index.add(ids, vectors)
    vector_index.remove([5003])
    before = [found(vector_index, query) for query in queries]
    vector_index.save(str(tmp_path / "event.faiss"))

    loaded = VectorIndex.load(str(tmp_path / "event.faiss"))
    assert loaded.kind == ("hnsw" if size >= THRESHOLD else "flat")
    assert len(loaded) == size - 1 and 5003 not in loaded.ids()
    assert [found(loaded, query) for query in queries] == before
    loaded.add(np.array([9999]), queries[:1])
    assert found(loaded, queries[0], 1) == [9999]


def store(event: Event, vectors: np.ndarray) -> list[int]:
    Question.objects.bulk_create(
        Question(
            event=event,
            text=f"q{i}",
            attendee="a",
            state="processed",
            vector=v.astype("<f4").tobytes(),
            vector_model=MODEL,
        )
        for i, v in enumerate(vectors)
    )
    return list(Question.objects.for_event(event).order_by("-id").values_list("id", flat=True)[: len(vectors)])[::-1]


@pytest.mark.django_db
def test_event_index_switches_on_its_own_and_follows_deletions_without_a_rebuild(event: Event):
    vectors, queries = clustered(260)
    ids = np.array(store(event, vectors[:150]), dtype=np.int64)
    first = index.event_index(event.id, MODEL)
    assert first.kind == "flat" and len(first) == 150

    ids = np.concatenate([ids, store(event, vectors[150:])])
    grown = index.event_index(event.id, MODEL)
    assert grown is first and grown.kind == "hnsw" and len(grown) == 260  # switched on the append path
    for query in queries:
        assert found(grown, query) == exact_top(vectors, ids, query)

    deleted = ids[:10].tolist()
    Question.objects.filter(id__in=deleted).delete()
    later = index.event_index(event.id, MODEL)
    assert later is first and len(later) == 250  # patched in place: no graph rebuild
    for query in queries:
        assert found(later, query) == exact_top(vectors[10:], ids[10:], query)

    index.forget(event.id)
    rebuilt = index.event_index(event.id, MODEL)
    assert rebuilt is not first and rebuilt.kind == "hnsw" and sorted(rebuilt.ids().tolist()) == ids[10:].tolist()


@pytest.mark.django_db
def test_event_index_takes_in_a_question_processed_after_later_ones(event: Event):
    vectors, _ = clustered(230)
    ids = store(event, vectors)
    retried = ids[5]
    Question.objects.filter(id=retried).update(vector=None, state="failed")
    vector_index = index.event_index(event.id, MODEL)
    assert len(vector_index) == 229 and vector_index.kind == "hnsw"
    Question.objects.filter(id=retried).update(vector=vectors[5].astype("<f4").tobytes(), state="processed")
    assert index.event_index(event.id, MODEL) is vector_index
    assert len(vector_index) == 230 and found(vector_index, vectors[5], 1) == [retried]


def test_bench_index_prints_one_json_object_with_the_documented_keys():
    out = io.StringIO()
    call_command("bench_index", "--sizes", "300,600", "--queries", "20", "--json", stdout=out)
    result = json.loads(out.getvalue().strip().splitlines()[-1])
    assert {"sizes", "results", "switch_at", "dim"} <= set(result)
    assert result["sizes"] == [300, 600] and result["dim"] == 384 and result["switch_at"] == THRESHOLD
    assert [row["size"] for row in result["results"]] == [300, 600]
    for row in result["results"]:
        assert set(row["flat"]) == {"build_s", "index_bytes", "p50_ms", "p99_ms"}
        assert set(row["hnsw"]) == {"build_s", "index_bytes", "p50_ms", "p99_ms", "recall_at_5"}
        assert row["flat"]["index_bytes"] >= row["size"] * 384 * 4  # the vectors themselves
        assert row["hnsw"]["index_bytes"] > row["flat"]["index_bytes"]  # plus the graph
        assert 0 < row["flat"]["p50_ms"] <= row["flat"]["p99_ms"]
        assert 0.95 <= row["hnsw"]["recall_at_5"] <= 1


def test_bench_index_rejects_bad_sizes():
    with pytest.raises(CommandError, match="--sizes"):
        call_command("bench_index", "--sizes", "10k", "--json", stdout=io.StringIO())


def test_an_empty_index_takes_the_width_of_its_first_vectors():
    """A 768-wide model (mpnet) in an event whose empty index was made at the default 384."""
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5, 768)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    vector_index = VectorIndex(384)
    assert vector_index.search(vectors[0], 3) == []
    vector_index.add(np.arange(5), vectors)
    assert vector_index.dim == 768 and found(vector_index, vectors[2], 1) == [2]
