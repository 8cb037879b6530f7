from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.events.models import Event
from webapp.questions import actions, inprocess
from webapp.questions.models import Question

DEMO_CODE = "DEMO"
# A platform all-hands, as an audience writes: several questions come back in other words.
QUESTIONS = [
    ("Will the slides be shared after the talk?", ["ana", "ben", "chen"]),
    ("What is the plan for the mobile app rewrite?", ["ana", "dev"]),
    ("Is the hybrid work policy changing next quarter?", ["ben", "chen", "dev", "eli"]),
    ("How will the reorg affect the platform team?", ["eli"]),
    ("can we get a copy of the deck afterwards", []),
    ("Are we going back to the office three days a week?", ["fay"]),
    ("When does the new on-call rotation start?", []),
    ("The wifi in the main hall has been awful all morning", ["gus", "ana"]),
    ("What happened with the outage last Tuesday and how do we prevent it?", ["dev", "fay"]),
    ("Thanks for being so open about the numbers, really appreciated!", ["chen"]),
    ("Will there be a recording of this session?", []),
    ("What's the timeline for rewriting the mobile app?", []),
]
# What the speaker is answering now, and a question already answered in writing.
ON_STAGE = "Is the hybrid work policy changing next quarter?"
ANSWERED = {
    "Will there be a recording of this session?": (
        "Yes: the recording and the slides go out by email tonight, and stay on the intranet."
    ),
}


class Command(BaseCommand):
    help = (
        "Create the demo event (code DEMO) with realistic questions, paraphrases included, and its moderator "
        "`demo` (a plain user, not staff). DEMO_PASSWORD sets the password, also on a later run."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--reset-password",
            action="store_true",
            help="give the demo user a new password (DEMO_PASSWORD when set, else a generated one, printed)",
        )

    def handle(self, reset_password: bool = False, **options) -> None:
        event = Event.objects.filter(code=DEMO_CODE).first()
        if event is None:
            event = Event.create("Platform all-hands (demo)", code=DEMO_CODE)
            for text, voters in QUESTIONS:
                question = actions.submit_question(event, text, attendee=f"demo-{secrets.token_hex(4)}")
                inprocess.finish(question.pk)  # in posting order, so a paraphrase is flagged against the first
                question.refresh_from_db()
                for voter in voters:
                    if question.status == Question.Status.VISIBLE:
                        actions.vote(question, f"demo-voter-{voter}")
                if question.status == Question.Status.VISIBLE and text in ANSWERED:
                    actions.write_answer(question, ANSWERED[text], moderator=None)
            actions.moderate(Question.objects.get(event=event, text=ON_STAGE), "now")
            self.stdout.write(f"created the demo event {DEMO_CODE} with {len(QUESTIONS)} questions")
        self._moderator(event, reset_password)

    def _moderator(self, event: Event, reset_password: bool) -> None:
        """The user ``demo`` moderates (and owns) the demo event only: its password is printed, so it gets
        no staff rights.

        Its password is DEMO_PASSWORD when set (applied again when it changed), else generated and
        printed on the first run and on ``--reset-password``.
        """
        users = get_user_model()
        chosen = os.environ.get("DEMO_PASSWORD", "")
        password = chosen or secrets.token_urlsafe(9)
        with transaction.atomic():
            user = users.objects.select_for_update().filter(username="demo").first()
            if user is None:
                user = users.objects.create_user("demo", password=password)
                changed = True
            elif reset_password or (chosen and not user.check_password(chosen)):
                user.set_password(password)
                user.save(update_fields=["password"])
                changed = True
            else:
                changed = False
            if user.is_staff or user.is_superuser:
                # Earlier versions made it staff, which moderates every event and opens the admin.
                user.is_staff = user.is_superuser = False
                user.save(update_fields=["is_staff", "is_superuser"])
                self.stdout.write("the demo user is no longer staff: it moderates the demo event only")
            event.moderators.add(user)
            if event.created_by_id is None:
                # Its owner too, so the demo shows the moderators page (for this event only).
                Event.objects.filter(pk=event.pk).update(created_by=user)
        if not changed:
            self.stdout.write(
                "moderator login: demo, password unchanged (python manage.py seed_demo --reset-password "
                "prints a new one; DEMO_PASSWORD, when set, becomes the password)"
            )
            return
        shown = "the password in DEMO_PASSWORD" if chosen else password
        self.stdout.write(f"moderator login: demo / {shown}  (sign in at /accounts/login/)")
