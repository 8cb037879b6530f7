from __future__ import annotations

from django.contrib import admin

from webapp.questions.models import Flag, Question


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("text", "event", "status", "state", "vote_count", "answered", "pinned", "sentiment_label")
    list_filter = ("status", "state", "answered", "sentiment_label", "event")
    search_fields = ("text", "author_name")
    readonly_fields = ("attendee", "vector_model", "sentiment_scores", "processed_at", "attempts", "last_error")
    exclude = ("vector",)
    raw_id_fields = ("merged_into",)


@admin.register(Flag)
class FlagAdmin(admin.ModelAdmin):
    list_display = ("question", "matched", "kind", "similarity", "status", "decided_by")
    list_filter = ("kind", "status")
    raw_id_fields = ("question", "matched")
