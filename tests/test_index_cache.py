"""Each process's index cache stays bounded: the least recently used events are dropped, then rebuilt."""

from __future__ import annotations

import numpy as np
import pytest

from webapp.events.models import Event
from webapp.questions import index
from webapp.questions.models import Question

pytestmark = pytest.mark.django_db
MODEL = "minilm-l6"


def event_with_vectors(code: str, n: int, seed: int) -> Event:
    event = Event.create(code, code=code)
    vectors = np.random.default_rng(seed).standard_normal((n, 384)).astype("<f4")
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for i, vector in enumerate(vectors):
        Question.objects.create(
            event=event,
            text=f"{code} {i}",
            attendee="a",
            state=Question.State.PROCESSED,
            vector=vector.tobytes(),
            vector_model=MODEL,
        )
    return event


def test_the_cache_drops_the_least_recently_used_event_past_its_bound(settings):
    settings.INDEX_CACHE_MAX_VECTORS = 5
    index.forget()
    first, second, third = (
        event_with_vectors(code, 2, seed) for seed, code in enumerate(["AAAAAA", "BBBBBB", "CCCCCC"])
    )
    index.event_index(first.pk, MODEL)
    index.event_index(second.pk, MODEL)
    index.event_index(first.pk, MODEL)  # used again: now the second is the oldest
    index.event_index(third.pk, MODEL)
    assert index.cached_vectors() == (2, 4)
    assert set(index._cache) == {(first.pk, MODEL), (third.pk, MODEL)}
    # A dropped event comes back whole, from the database.
    rebuilt = index.event_index(second.pk, MODEL)
    assert sorted(rebuilt.ids().tolist()) == sorted(Question.objects.filter(event=second).values_list("id", flat=True))
    assert index.cached_vectors()[1] <= 5
    index.forget()


def test_vectors_of_two_models_never_share_an_index():
    index.forget()
    event = event_with_vectors("DDDDDD", 3, seed=7)
    Question.objects.filter(pk=Question.objects.filter(event=event).first().pk).update(vector_model="mpnet")
    assert len(index.event_index(event.pk, MODEL)) == 2
    assert len(index.event_index(event.pk, "mpnet")) == 1
    index.forget(event.pk)
    assert index.cached_vectors() == (0, 0)
