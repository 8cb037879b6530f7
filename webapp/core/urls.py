from __future__ import annotations

from django.urls import path

from webapp.core import views

app_name = "core"
urlpatterns = [
    path("", views.home, name="home"),
    path("models/", views.models, name="models"),
    path("api/compare", views.api_compare, name="api-compare"),
    path("healthz", views.healthz, name="healthz"),
]
