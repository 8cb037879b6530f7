"""Included by ``webapp.questions.page_urls``: the names live in its ``pages`` namespace."""

from __future__ import annotations

from django.urls import path

from webapp.dashboard import views

urlpatterns = [
    path("e/<str:code>/dashboard/", views.dashboard_page, name="dashboard"),
    path("e/<str:code>/export.csv", views.export_csv, name="export"),
    path("api/events/<str:code>/dashboard", views.dashboard_json, name="api-dashboard"),
]
