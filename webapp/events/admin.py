from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from webapp.events.models import Event


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("title", "code", "is_open", "premoderation", "anonymous_allowed", "created_at", "links")
    list_filter = ("is_open", "premoderation")
    search_fields = ("title", "code")
    filter_horizontal = ("moderators",)
    readonly_fields = ("created_by", "created_at")
    fieldsets = (
        (None, {"fields": ("title", "code", "is_open")}),
        ("Audience", {"fields": ("anonymous_allowed", "premoderation")}),
        ("Moderators", {"fields": ("moderators",)}),
        (
            "Duplicate detection",
            {
                "fields": ("duplicate_threshold", "related_threshold"),
                "description": "Leave empty to use the embedding model's calibrated thresholds.",
            },
        ),
        (None, {"fields": ("created_by", "created_at")}),
    )

    @admin.display(description="pages")
    def links(self, event: Event) -> str:
        return format_html(
            '<a href="/e/{0}/">attendees</a> · <a href="/e/{0}/moderate/">moderate</a> · '
            '<a href="/e/{0}/present/">present</a> · <a href="/e/{0}/dashboard/">dashboard</a>',
            event.code,
        )

    def save_model(self, request: HttpRequest, obj: Event, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
            if not obj.code:
                from webapp.events.codes import new_code

                obj.code = new_code()
        obj.code = obj.code.strip().upper()
        super().save_model(request, obj, form, change)

    def get_queryset(self, request: HttpRequest):
        # Staff see every event; others only the ones they moderate.
        return super().get_queryset(request).moderated_by(request.user)
