from __future__ import annotations

from django.urls import path

from webapp.events import views

app_name = "events"
urlpatterns = [
    path("events/", views.mine, name="mine"),
    # Not "settings": e/<code>/settings takes the moderator page's switches (webapp/questions/page_urls.py).
    path("e/<str:code>/moderators/", views.moderators, name="moderators"),
]
