from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.events import actions
from webapp.events.models import Event


class Command(BaseCommand):
    help = "Create an event and print its join code (and the password of each moderator it creates)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("title")
        parser.add_argument("--code", help="join code (default: a random 6-character one)")
        parser.add_argument(
            "--moderator", action="append", default=[], help="username of an existing user who moderates (repeatable)"
        )
        parser.add_argument(
            "--create-moderator",
            action="append",
            default=[],
            metavar="USERNAME",
            help="create a plain user (not staff) who moderates, and print its password (repeatable)",
        )
        parser.add_argument("--premoderation", action="store_true", help="questions wait for approval")
        parser.add_argument("--no-anonymous", action="store_true", help="attendees must give a name")

    def handle(
        self, title: str, code: str | None, moderator: list[str], create_moderator: list[str], **options
    ) -> None:
        users = get_user_model()
        create_moderator = list(dict.fromkeys(create_moderator))
        existing = []
        for username in moderator:
            user = users.objects.filter(username=username).first()
            if user is None:
                raise CommandError(
                    f"no user named {username!r}: to create one that moderates this event, "
                    f"use --create-moderator {username} instead"
                )
            existing.append(user)
        for username in create_moderator:
            if users.objects.filter(username=username).exists():
                raise CommandError(f"a user named {username!r} exists already: use --moderator {username}")
            try:
                users._meta.get_field(users.USERNAME_FIELD).run_validators(username)
            except ValidationError as exc:
                raise CommandError(f"--create-moderator {username!r}: {' '.join(exc.messages)}") from None
        with transaction.atomic():
            try:
                event = Event.create(
                    title,
                    code=code,
                    premoderation=options["premoderation"],
                    anonymous_allowed=not options["no_anonymous"],
                )
            except ValidationError as exc:
                raise CommandError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
            event.moderators.add(*existing)
            # The same creation as the moderators page's: a plain user and a generated password.
            logins = [(name, actions.create_moderator(event, name)[1]) for name in create_moderator]
        self.stdout.write(event.code)
        for name, password in logins:
            self.stdout.write(f"moderator login: {name} / {password}  (sign in at /accounts/login/)")
