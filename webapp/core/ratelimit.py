"""A fixed-window rate limit per client address, kept in Django's cache."""

from __future__ import annotations

import time

from django.core.cache import cache
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The connecting address; 0.0.0.0 when there is none (a request made in code, as Client.force_login
    makes): django-axes stores it in an address column, which PostgreSQL checks."""
    return request.META.get("REMOTE_ADDR") or "0.0.0.0"


def allow(scope: str, key: str, limit: int, window_s: int = 60) -> bool:
    """Count one hit for ``key`` in ``scope``; False once it exceeds ``limit`` within the window."""
    bucket = f"ratelimit:{scope}:{key}:{int(time.time() // window_s)}"
    cache.add(bucket, 0, timeout=window_s * 2)
    try:
        hits = cache.incr(bucket)
    except ValueError:  # evicted between add and incr
        cache.set(bucket, 1, timeout=window_s * 2)
        hits = 1
    return hits <= limit
