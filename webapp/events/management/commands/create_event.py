from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.events.models import Event


class Command(BaseCommand):
    help = "Create an event and print its join code."

    def add_arguments(self, parser) -> None:
        parser.add_argument("title")
        parser.add_argument("--code", help="join code (default: a random 6-character one)")
        parser.add_argument("--moderator", action="append", default=[], help="username of a moderator (repeatable)")
        parser.add_argument("--premoderation", action="store_true", help="questions wait for approval")
        parser.add_argument("--no-anonymous", action="store_true", help="attendees must give a name")

    def handle(self, title: str, code: str | None, moderator: list[str], **options) -> None:
        users = []
        for username in moderator:
            user = get_user_model().objects.filter(username=username).first()
            if user is None:
                raise CommandError(f"no user named {username!r}: create it first (python manage.py createsuperuser)")
            users.append(user)
        try:
            event = Event.create(
                title,
                code=code,
                premoderation=options["premoderation"],
                anonymous_allowed=not options["no_anonymous"],
            )
        except ValidationError as exc:
            raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        event.moderators.add(*users)
        self.stdout.write(event.code)
