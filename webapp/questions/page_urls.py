"""The event pages (attendee, moderator, presenter, dashboard): everything under /e/<code>/."""

from __future__ import annotations

from django.urls import include, path

from webapp.questions import views

app_name = "pages"
urlpatterns = [
    path("e/<str:code>/", views.attendee, name="attendee"),
    path("e/<str:code>/moderate/", views.moderate, name="moderate"),
    path("e/<str:code>/present/", views.present, name="present"),
    path("e/<str:code>/settings", views.event_settings, name="settings"),
    path("e/<str:code>/qr.svg", views.qr_svg, name="qr"),
    # The dashboard's routes join this namespace, so the project's urls.py needs one include for
    # all the event pages.
    path("", include("webapp.dashboard.urls")),
]
