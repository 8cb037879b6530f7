"""Which earlier questions a vector duplicates or relates to, by the thresholds in force."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embeddings.cards import Thresholds
from webapp.core.inference import model_thresholds
from webapp.events.models import Event
from webapp.questions.index import event_index
from webapp.questions.models import Question

SEARCH_DEPTH = 20


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


def find_matches(
    event: Event, vector: np.ndarray, exclude_id: int | None = None, limit: int = 5, public_only: bool = False
) -> list[Match]:
    """Earlier questions above the related threshold, best first.

    A merged question stands for the one it was merged into; hidden ones never match.
    """
    thresholds = thresholds_for(event)
    hits = [(qid, s) for qid, s in event_index(event.id).search(vector, SEARCH_DEPTH) if qid != exclude_id]
    hits = [(qid, s) for qid, s in hits if s >= thresholds.related]
    if not hits:
        return []
    questions = Question.objects.in_bulk([qid for qid, _ in hits])
    best: dict[int, tuple[Question, float]] = {}
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
        if question.pk not in best or best[question.pk][1] < similarity:
            best[question.pk] = (question, similarity)
    ranked = sorted(best.values(), key=lambda pair: pair[1], reverse=True)[:limit]
    return [Match(q, round(s, 4), thresholds.classify(s)) for q, s in ranked]
