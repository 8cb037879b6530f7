"""Which earlier questions a vector duplicates or relates to, and which of them a moderator sees as flags.

The flag policy was chosen on whole events replayed in posting order (``manage.py replay_events``;
figures in docs/models.md): a moderator needs few flags that are nearly always right, so a new
question gets at most one duplicate flag (its best match), and a related flag only when it has no
duplicate and the related threshold is worth a look. Where the embedding model's card names a
verifier, a best match at or above its gate is read together with the new question by that pair
reader, which decides whether it is a duplicate (the same words about another year, tier or day are
what a cosine cannot tell apart); what it turns down can still be a related flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from embeddings.cards import Thresholds
from webapp.core.inference import Verifier, embedding_model, functions, model_thresholds, verifier
from webapp.events.models import Event
from webapp.questions.index import event_index
from webapp.questions.models import Question

SEARCH_DEPTH = 20
# Related flags per question (only when no duplicate was found). On the dev replay a second
# related flag was right less often than the first and doubled the queue.
RELATED_FLAGS = 1
# The moderator's cost, which the operating points are chosen for (by the replay of whole events, and
# from an event's verdicts): a duplicate flag must almost always be right; a related flag at least
# usually worth a look, or it is not raised.
DUPLICATE_PRECISION_TARGET = 0.85
RELATED_PRECISION_TARGET = 0.70
T = TypeVar("T")


def thresholds_for(event: Event) -> Thresholds:
    """The model card's calibrated thresholds, with the event's overrides on top."""
    if event.duplicate_threshold is not None and event.related_threshold is not None:
        return Thresholds(
            duplicate=event.duplicate_threshold, related=min(event.related_threshold, event.duplicate_threshold)
        )
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

    A merged question stands for the one it was merged into; hidden and withdrawn ones never match.
    """
    hits = [
        (qid, s)
        for qid, s in event_index(event.id, embedding_model()).search(vector, SEARCH_DEPTH)
        if qid != exclude_id
    ]
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
        if question.pk == exclude_id or question.status in (Question.Status.HIDDEN, Question.Status.WITHDRAWN):
            continue
        if public_only and question.status != Question.Status.VISIBLE:
            continue
        if question.pk not in best or best[question.pk].similarity < similarity:
            best[question.pk] = Candidate(question, round(similarity, 4))
    return sorted(best.values(), key=lambda c: c.similarity, reverse=True)


def choose_flags(
    ranked: list[tuple[T, float]], thresholds: Thresholds, verdict: bool | None = None
) -> list[tuple[str, T, float]]:
    """The flags ``(kind, question, similarity)`` a new question gets from its ranked candidates.

    ``verdict``: the verifier's decision on the best candidate (None: not read, the cosine decides).
    Generic in the question so that the replay can score the same policy at other thresholds.
    """
    if not ranked:
        return []
    best, similarity = ranked[0]
    duplicate = verdict if verdict is not None else similarity >= thresholds.duplicate
    if duplicate:
        return [("duplicate", best, similarity)]
    return [("related", q, s) for q, s in ranked[:RELATED_FLAGS] if s >= thresholds.related]


@dataclass(frozen=True)
class Reading:
    """The verifier on one candidate: its combined score, and a conflict the function found (or None)."""

    score: float
    conflict: str | None = None

    def is_duplicate(self, check: Verifier) -> bool:
        return self.score >= check.duplicate and not (check.veto and self.conflict)


def verify_best(text: str, ranked: list[Candidate], check: Verifier | None) -> dict[int, Reading]:
    """The verifier's reading of the best candidate, by its id, when it is at or above the gate."""
    if check is None or not ranked or ranked[0].similarity < check.gate:
        return {}
    best = ranked[0]
    (verdict,) = functions().verify([(text, best.question.text)], model=check.model)
    return {best.question.pk: Reading(check.score(best.similarity, verdict.logit), verdict.conflict)}


def pre_verify(event: Event, text: str, vector: np.ndarray, exclude_id: int) -> dict[int, Reading]:
    """The best candidate read now, outside any lock (a function call); ``flags_for`` uses it if still the best."""
    check = verifier()
    if check is None:
        return {}
    return verify_best(text, candidates(event, vector, exclude_id=exclude_id, floor=check.gate), check)


def flags_for(
    event: Event, vector: np.ndarray, exclude_id: int, checked: dict[int, Reading] | None = None
) -> list[Match]:
    """What processing flags a question with; ``checked`` holds ``pre_verify``'s scores."""
    thresholds, check = thresholds_for(event), verifier()
    floor = min(thresholds.related, check.gate) if check else thresholds.related
    ranked = candidates(event, vector, exclude_id=exclude_id, floor=floor)
    verdict = None
    if check and ranked and ranked[0].question.pk in (checked or {}):
        verdict = checked[ranked[0].question.pk].is_duplicate(check)
    chosen = choose_flags([(c.question, c.similarity) for c in ranked], thresholds, verdict)
    return [Match(question, similarity, kind) for kind, question, similarity in chosen]


def find_matches(
    event: Event, vector: np.ndarray, exclude_id: int | None = None, limit: int = 5, public_only: bool = False
) -> list[Match]:
    """Earlier questions above the related threshold, best first ("already asked?" while typing)."""
    thresholds = thresholds_for(event)
    ranked = candidates(event, vector, exclude_id=exclude_id, public_only=public_only, floor=thresholds.related)
    return [Match(c.question, c.similarity, thresholds.classify(c.similarity)) for c in ranked[:limit]]
