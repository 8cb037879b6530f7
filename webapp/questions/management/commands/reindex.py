from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from webapp.events.codes import normalise
from webapp.events.models import Event
from webapp.questions import index, processing
from webapp.questions.models import Question


class Command(BaseCommand):
    help = "Rebuild the FAISS indexes from the vectors in the database; optionally process what is pending."

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
        summary = {"events": 0, "vectors": 0, "processed": 0, "failed": 0}
        for item in events:
            if process:
                todo = Question.objects.for_event(item).exclude(state=Question.State.PROCESSED).order_by("id")
                for question_id in todo.values_list("id", flat=True):
                    try:
                        processing.process_question(question_id)
                        summary["processed"] += 1
                    except Exception as exc:
                        processing.mark_failed(question_id, str(exc))
                        summary["failed"] += 1
            index.forget(item.id)
            summary["vectors"] += len(index.event_index(item.id))
            summary["events"] += 1
        if as_json:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(
                f"{summary['events']} events, {summary['vectors']} vectors indexed"
                + (f"; processed {summary['processed']}, failed {summary['failed']}" if process else "")
            )
