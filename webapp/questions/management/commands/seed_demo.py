from __future__ import annotations

import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from webapp.events.models import Event
from webapp.questions import actions
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


class Command(BaseCommand):
    help = "Create the demo event (code DEMO) with realistic questions, paraphrases included, and a demo moderator."

    def handle(self, **options) -> None:
        event = Event.objects.filter(code=DEMO_CODE).first()
        if event is None:
            event = Event.create("Platform all-hands (demo)", code=DEMO_CODE)
            for text, voters in QUESTIONS:
                question = actions.submit_question(event, text, attendee=f"demo-{secrets.token_hex(4)}")
                question.refresh_from_db()
                for voter in voters:
                    if question.status == Question.Status.VISIBLE:
                        actions.vote(question, f"demo-voter-{voter}")
            self.stdout.write(f"created the demo event {DEMO_CODE} with {len(QUESTIONS)} questions")
        self._moderator(event)

    def _moderator(self, event: Event) -> None:
        """A staff user ``demo`` moderates the demo event; its password comes from DEMO_PASSWORD or is made up."""
        users = get_user_model()
        if users.objects.filter(username="demo").exists():
            event.moderators.add(users.objects.get(username="demo"))
            return
        password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
        with transaction.atomic():
            user = users.objects.create_user("demo", password=password, is_staff=True)
            event.moderators.add(user)
        self.stdout.write(f"moderator login: demo / {password}  (sign in at /accounts/login/)")
