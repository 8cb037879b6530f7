from __future__ import annotations

from django.apps import AppConfig


class QuestionsConfig(AppConfig):
    name = "webapp.questions"
    label = "questions"

    def ready(self) -> None:
        from webapp.questions import live

        live.connect()
