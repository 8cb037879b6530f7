"""``runserver`` for `make run`: Django's development server with a listen backlog for a room.

Django's server accepts from a backlog of 10 connections: when 200 attendees post at once, the
kernel resets most of the others (seen: 77 of 200 reset). A backlog of 1,024 lets them queue.
"""

from __future__ import annotations

from django.contrib.staticfiles.management.commands import runserver
from django.core.servers.basehttp import WSGIServer


class RoomServer(WSGIServer):
    request_queue_size = 1024


class Command(runserver.Command):
    server_cls = RoomServer
