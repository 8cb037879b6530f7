from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from webapp.events.models import Event
from webapp.questions.export import write_csv


class Command(BaseCommand):
    help = "Write an event's questions, with sentiment and flags, as CSV."

    def add_arguments(self, parser) -> None:
        parser.add_argument("code")
        parser.add_argument("--output", "-o", help="file to write (default: standard output)")

    def handle(self, code: str, output: str | None, **options) -> None:
        event = Event.objects.by_code(code)
        if event is None:
            raise CommandError(f"no event with code {code!r}")
        if output:
            with open(output, "w", newline="", encoding="utf-8") as handle:
                count = write_csv(event, handle)
            self.stderr.write(f"{count} questions written to {output}")
        else:
            write_csv(event, sys.stdout)
