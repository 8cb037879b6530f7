from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from embeddings.errors import FunctionError
from webapp.core.inference import embedding_model, functions
from webapp.events.codes import normalise
from webapp.events.models import Event
from webapp.questions import index, lifecycle, processing
from webapp.questions.models import Question, vector_bytes

BATCH = 64  # texts per call, the functions' limit


class Command(BaseCommand):
    help = (
        "Bring every event's index to the current embedding model (EMBEDDING_MODEL): embed again the "
        "questions whose vector another model made. Every process's index of that model then finds them "
        "(indexes are kept per model and follow the database). Optionally process what is pending."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--event", help="only this event's code")
        parser.add_argument("--process", action="store_true", help="also process pending and failed questions now")
        parser.add_argument("--json", action="store_true", dest="as_json")

    def handle(self, event: str | None, process: bool, as_json: bool, **options) -> None:
        events = Event.objects.all()
        if event:
            events = events.filter(code=normalise(event))
            if not events.exists():
                raise CommandError(f"no event with code {event!r}")
        model = embedding_model()
        summary = {"model": model, "events": 0, "vectors": 0, "reembedded": 0, "processed": 0, "failed": 0}
        for item in events:
            if process:
                self._process_pending(item, summary)
            summary["reembedded"] += self._reembed(item, model)
            index.forget(item.id)
            summary["vectors"] += len(index.event_index(item.id, model))
            summary["events"] += 1
        if as_json:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"{summary['events']} events, {summary['vectors']} vectors of {model} indexed, "
                f"{summary['reembedded']} embedded again"
                + (f"; processed {summary['processed']}, failed {summary['failed']}" if process else "")
            )

    def _process_pending(self, event: Event, summary: dict) -> None:
        todo = Question.objects.for_event(event).exclude(state=Question.State.PROCESSED).order_by("id")
        for question_id in todo.values_list("id", flat=True):
            try:
                processing.process_question(question_id)
                summary["processed"] += 1
            except Exception as exc:
                lifecycle.failed(question_id, str(exc))
                summary["failed"] += 1

    def _reembed(self, event: Event, model: str) -> int:
        """Embed again the event's questions whose vectors another model made; how many."""
        stale = Question.objects.for_event(event).with_vector().exclude(vector_model=model).order_by("id")
        rows = list(stale.values_list("id", "text"))
        for start in range(0, len(rows), BATCH):
            batch = rows[start : start + BATCH]
            try:
                vectors = functions().embed([text for _, text in batch])
            except FunctionError as exc:
                raise CommandError(f"the embedding function failed ({exc.message}); run reindex again") from None
            for (question_id, _), vector in zip(batch, vectors, strict=True):
                Question.objects.filter(pk=question_id).update(vector=vector_bytes(vector), vector_model=model)
        return len(rows)
