"""Which earlier questions a vector duplicates or relates to, and which of them a moderator sees as flags.

The flag policy was chosen on whole events replayed in posting order (``manage.py replay_events``;
figures in docs/models.md): a moderator needs few flags that are nearly always right, so a new
question gets at most one duplicate flag (its best match), and a related flag only when it has no
duplicate and the related threshold is worth a look.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from embeddings.cards import Thresholds
from webapp.core.inference import model_thresholds
from webapp.events.models import Event
from webapp.questions.index import event_index
from webapp.questions.models import Question

SEARCH_DEPTH = 20
# Related flags per question (only when no duplicate was found). On the dev replay a second
# related flag was right less often than the first and doubled the queue.
RELATED_FLAGS = 1
T = TypeVar("T")


def thresholds_for(event: Event) -> Thresholds:
    """The model card's calibrated thresholds, with the event's overrides on top."""
    card = model_thresholds()
    duplicate = event.duplicate_threshold if event.duplicate_threshold is not None else card.duplicate
    related = event.related_threshold if event.related_threshold is not None else card.related
    return Thresholds(duplicate=duplicate, related=min(related, duplicate))


@dataclass(frozen=True)
class Match:
    question: Question
    similarity: float
    kind: str  # duplicate | related


@dataclass(frozen=True)
class Candidate:
    question: Question
    similarity: float


def candidates(
    event: Event, vector: np.ndarray, exclude_id: int | None = None, public_only: bool = False, floor: float = -1.0
) -> list[Candidate]:
    """Earlier questions at or above ``floor``, best first, one entry per question they stand for.

    A merged question stands for the one it was merged into; hidden ones never match.
    """
    hits = [(qid, s) for qid, s in event_index(event.id).search(vector, SEARCH_DEPTH) if qid != exclude_id]
    hits = [(qid, s) for qid, s in hits if s >= floor]
    if not hits:
        return []
    questions = Question.objects.select_related("merged_into").in_bulk([qid for qid, _ in hits])
    best: dict[int, Candidate] = {}
    for qid, similarity in hits:
        question = questions.get(qid)
        if question is None:
            continue
        if question.status == Question.Status.MERGED and question.merged_into_id:
            question = question.merged_into
        if question.pk == exclude_id or question.status == Question.Status.HIDDEN:
            continue
        if public_only and question.status != Question.Status.VISIBLE:
            continue
        if question.pk not in best or best[question.pk].similarity < similarity:
            best[question.pk] = Candidate(question, round(similarity, 4))
    return sorted(best.values(), key=lambda c: c.similarity, reverse=True)


def choose_flags(ranked: list[tuple[T, float]], thresholds: Thresholds) -> list[tuple[str, T, float]]:
    """The flags ``(kind, question, similarity)`` a new question gets from its ranked candidates.

    Generic in the question so that the replay can score the same policy at other thresholds.
    """
    if not ranked:
        return []
    best, similarity = ranked[0]
    if similarity >= thresholds.duplicate:
        return [("duplicate", best, similarity)]
    return [("related", q, s) for q, s in ranked[:RELATED_FLAGS] if thresholds.related <= s < thresholds.duplicate]


def flags_for(event: Event, vector: np.ndarray, exclude_id: int) -> list[Match]:
    """What processing flags a question with."""
    thresholds = thresholds_for(event)
    ranked = candidates(event, vector, exclude_id=exclude_id, floor=thresholds.related)
    chosen = choose_flags([(c.question, c.similarity) for c in ranked], thresholds)
    return [Match(question, similarity, kind) for kind, question, similarity in chosen]


def find_matches(
    event: Event, vector: np.ndarray, exclude_id: int | None = None, limit: int = 5, public_only: bool = False
) -> list[Match]:
    """Earlier questions above the related threshold, best first ("already asked?" while typing)."""
    thresholds = thresholds_for(event)
    ranked = candidates(event, vector, exclude_id=exclude_id, public_only=public_only, floor=thresholds.related)
    return [Match(c.question, c.similarity, thresholds.classify(c.similarity)) for c in ranked[:limit]]
