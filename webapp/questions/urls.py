from __future__ import annotations

from django.urls import path

from webapp.questions import api

app_name = "questions"
urlpatterns = [
    path("api/events/<str:code>/questions", api.event_questions, name="api-questions"),
    path("api/events/<str:code>/similar", api.event_similar, name="api-similar"),
    path("api/events/<str:code>/flags", api.event_flags, name="api-flags"),
    path("api/events/<str:code>/flags/dismiss", api.flags_dismiss, name="api-flags-dismiss"),
    path("api/events/<str:code>/queue", api.event_moderation_queue, name="api-queue"),
    path("api/questions/<int:pk>", api.question_detail, name="api-question"),
    path("api/questions/<int:pk>/vote", api.question_vote, name="api-vote"),
    path("api/questions/<int:pk>/moderate", api.question_moderate, name="api-moderate"),
    path("api/questions/<int:pk>/answer", api.question_answer, name="api-answer"),
    path("api/flags/<int:pk>/merge", api.flag_decide, {"verdict": "merge"}, name="api-flag-merge"),
    path("api/flags/<int:pk>/dismiss", api.flag_decide, {"verdict": "dismiss"}, name="api-flag-dismiss"),
]
