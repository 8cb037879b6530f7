from __future__ import annotations

from django.urls import path

from webapp.events import views

app_name = "events"
urlpatterns = [
    path("events/", views.mine, name="mine"),
]
