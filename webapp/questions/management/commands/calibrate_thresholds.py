from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from embeddings.pairs import DataError, read_pairs
from webapp.core.inference import functions, model_thresholds
from webapp.events.models import Event
from webapp.questions.models import Flag
from webapp.questions.similarity import DUPLICATE_PRECISION_TARGET, RELATED_PRECISION_TARGET

# A few verdicts say little: one wrong flag at 0.9 would lift the threshold above every paraphrase.
# So a calibration moves the card's duplicate threshold by at most MAX_STEP, and only on at least
# MIN_VERDICTS labelled pairs. On the dev replay (a moderator deciding each event's first half,
# figures on the second half) unbounded moves cost a third of the recall for +0.03 precision
# (docs/functions.md).
MAX_STEP = 0.05
MIN_VERDICTS = 10


class Command(BaseCommand):
    help = (
        "Choose duplicate / related thresholds for the moderator's cost from the moderators' verdicts (merged "
        "flags are duplicates, dismissed ones are not) plus labelled pair files; with --event CODE --write, "
        "store them as that event's overrides."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="*", type=Path, help="labelled pairs (label, question_a, question_b)")
        parser.add_argument("--event", help="only this event's verdicts")
        parser.add_argument("--write", action="store_true", help="store the result as the event's overrides")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, files: list[Path], event: str | None, write: bool, as_json: bool, **options) -> None:
        target = None
        if event:
            target = Event.objects.by_code(event)
            if target is None:
                raise CommandError(f"no event with code {event!r}")
        elif write:
            raise CommandError("--write needs --event: the model's own thresholds live in its card")
        try:
            pairs = [p for path in files for p in read_pairs(path)]
        except DataError as exc:
            raise CommandError(str(exc)) from None
        similarities, labels = verdicts(target)
        if pairs:
            texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
            vectors = dict(
                zip(texts, np.concatenate([functions().embed(texts[i : i + 64]) for i in range(0, len(texts), 64)]))
            )
            similarities += [float(vectors[p.a] @ vectors[p.b]) for p in pairs]
            labels += [p.label for p in pairs]
        result = choose(similarities, labels)
        result["written"] = bool(write and target)
        if result["written"]:
            store(target, result["thresholds"])
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            t, card = result["thresholds"], result["model_card"]
            self.stdout.write(
                f"duplicate >= {t['duplicate']}, related >= {t['related']} (from {result['pairs']} pairs; "
                f"the model card says {card['duplicate']} / {card['related']})"
                + ("; stored on the event" if result["written"] else "")
            )


def verdicts(event: Event | None) -> tuple[list[float], list[str]]:
    """A moderator's decided flags as labelled similarities: merged = duplicate; dismissed = not (related
    unknown). Flags a merge closed because they repeated another flag have no moderator: no verdict."""
    flags = Flag.objects.exclude(status=Flag.Status.OPEN).exclude(decided_by__isnull=True)
    if event is not None:
        flags = flags.filter(question__event=event)
    rows = list(flags.values_list("similarity", "status"))
    return [s for s, _ in rows], ["duplicate" if status == Flag.Status.MERGED else "unrelated" for _, status in rows]


def choose(similarities: list[float], labels: list[str]) -> dict:
    """The lowest duplicate threshold whose flags keep the precision target; related likewise below it.

    Verdicts only exist for flags that were raised, so thresholds mostly move up from the card's; a
    flag a moderator merged below the duplicate threshold (a related flag) moves it down. Where the
    labels cannot tell, the card's value stays.
    """
    if len(set(labels)) < 2 or len(labels) < MIN_VERDICTS:
        raise CommandError(
            f"not enough verdicts to calibrate ({len(labels)} pairs, labels {sorted(set(labels))}; at least "
            f"{MIN_VERDICTS} of both kinds): merge and dismiss some flags first, or pass labelled pair files"
        )
    card = model_thresholds()
    sims, gold = np.array(similarities, dtype=float), np.array(labels)
    duplicate = lowest_precise_threshold(sims, gold == "duplicate", DUPLICATE_PRECISION_TARGET)
    if duplicate is None:  # even the best-scoring flag was wrong: above everything seen
        duplicate = min(1.0, round(float(sims.max()) + 0.01, 4))
    duplicate = min(max(duplicate, card.duplicate - MAX_STEP), card.duplicate + MAX_STEP)
    below = sims < duplicate
    related = card.related
    if "related" in labels and below.any():
        worth_a_look = np.isin(gold[below], ["duplicate", "related"])
        found = lowest_precise_threshold(sims[below], worth_a_look, RELATED_PRECISION_TARGET)
        related = found if found is not None else duplicate
    return {
        "pairs": len(labels),
        "thresholds": {"duplicate": round(duplicate, 4), "related": round(min(related, duplicate), 4)},
        "model_card": {"duplicate": card.duplicate, "related": card.related},
    }


def lowest_precise_threshold(
    similarities: np.ndarray, positive: np.ndarray, target: float, min_count: int = 1
) -> float | None:
    """The lowest threshold at which the pairs at or above it are ``positive`` with precision >= ``target``.

    For an operating point chosen by the moderator's cost (a flag must almost always be right) rather
    than by macro-F1. Thresholds with fewer than ``min_count`` pairs above them are not considered;
    None when no threshold reaches ``target``.
    """
    order = np.argsort(-np.asarray(similarities, dtype=float), kind="stable")
    sims = np.asarray(similarities, dtype=float)[order]
    hits = np.cumsum(np.asarray(positive, dtype=bool)[order])
    counts = np.arange(1, len(sims) + 1)
    # A threshold takes all pairs of one similarity at once: only the last of a run of ties counts.
    last_of_tie = np.append(sims[1:] != sims[:-1], True) if len(sims) else np.array([], dtype=bool)
    ok = last_of_tie & (counts >= min_count) & (hits >= target * counts - 1e-9)
    return float(sims[ok][-1]) if ok.any() else None


def store(event: Event, thresholds: dict[str, float]) -> None:
    event.duplicate_threshold, event.related_threshold = thresholds["duplicate"], thresholds["related"]
    event.save(update_fields=["duplicate_threshold", "related_threshold"])


def event_thresholds(event: Event, write: bool = False) -> dict:
    """Thresholds from one event's verdicts alone (the replay's simulated moderator uses this)."""
    result = choose(*verdicts(event))
    if write:
        store(event, result["thresholds"])
    return result
