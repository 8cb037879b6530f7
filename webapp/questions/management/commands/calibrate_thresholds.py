from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError

from embeddings.datasets import DataError, read_pairs
from embeddings.metrics import best_thresholds
from webapp.core.inference import functions, model_thresholds
from webapp.events.codes import normalise
from webapp.events.models import Event
from webapp.questions.models import Flag


class Command(BaseCommand):
    help = (
        "Choose duplicate / related thresholds from the moderators' verdicts (merged flags are duplicates, "
        "dismissed ones are not) plus labelled pair files; with --event CODE --write, store them as that "
        "event's overrides."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="*", type=Path, help="labelled pairs (label, question_a, question_b)")
        parser.add_argument("--event", help="only this event's verdicts")
        parser.add_argument("--write", action="store_true", help="store the result as the event's overrides")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, files: list[Path], event: str | None, write: bool, as_json: bool, **options) -> None:
        flags = Flag.objects.exclude(status=Flag.Status.OPEN).select_related("question", "matched")
        target = None
        if event:
            target = Event.objects.filter(code=normalise(event)).first()
            if target is None:
                raise CommandError(f"no event with code {event!r}")
            flags = flags.filter(question__event=target)
        elif write:
            raise CommandError("--write needs --event: the model's own thresholds live in its card")
        similarities, labels = [], []
        for flag in flags:
            similarities.append(flag.similarity)
            # A dismissed flag says "not the same question"; whether it was related is not recorded.
            labels.append("duplicate" if flag.status == Flag.Status.MERGED else "unrelated")
        try:
            pairs = [p for path in files for p in read_pairs(path)]
        except DataError as exc:
            raise CommandError(str(exc)) from None
        if pairs:
            texts = sorted({p.a for p in pairs} | {p.b for p in pairs})
            vectors = dict(
                zip(texts, np.concatenate([functions().embed(texts[i : i + 64]) for i in range(0, len(texts), 64)]))
            )
            similarities += [float(vectors[p.a] @ vectors[p.b]) for p in pairs]
            labels += [p.label for p in pairs]
        if len(set(labels)) < 2:
            raise CommandError(
                f"not enough verdicts to calibrate ({len(labels)} pairs, labels {sorted(set(labels))}): "
                "merge and dismiss some flags first, or pass labelled pair files"
            )
        duplicate, related, score = best_thresholds(np.array(similarities), labels)
        card = model_thresholds()
        related = related if related is not None else min(card.related, duplicate)
        result = {
            "pairs": len(labels),
            "verdicts": flags.count(),
            "thresholds": {"duplicate": round(duplicate, 4), "related": round(related, 4)},
            "model_card": {"duplicate": card.duplicate, "related": card.related},
            "macro_f1": round(score, 4),
            "written": bool(write and target),
        }
        if write and target:
            target.duplicate_threshold, target.related_threshold = duplicate, related
            target.save(update_fields=["duplicate_threshold", "related_threshold"])
        if as_json:
            self.stdout.write(json.dumps(result))
        else:
            t = result["thresholds"]
            self.stdout.write(
                f"duplicate >= {t['duplicate']}, related >= {t['related']} (macro-F1 {result['macro_f1']} on "
                f"{result['pairs']} pairs; the model card says {card.duplicate} / {card.related})"
                + ("; stored on the event" if result["written"] else "")
            )
