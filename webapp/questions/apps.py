from __future__ import annotations

from django.apps import AppConfig


class QuestionsConfig(AppConfig):
    name = "webapp.questions"
    label = "questions"

    def ready(self) -> None:
        from webapp.questions import live, recovery  # noqa: F401 (recovery: the workers' sweeper signals)

        live.connect()
