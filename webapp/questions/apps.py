from __future__ import annotations

from django.apps import AppConfig


class QuestionsConfig(AppConfig):
    name = "webapp.questions"
    label = "questions"
