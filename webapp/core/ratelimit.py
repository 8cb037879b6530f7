"""A fixed-window rate limit per client address, kept in Django's cache."""

from __future__ import annotations

import ipaddress
import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def client_address(request: HttpRequest) -> str:
    """The client's address: the connecting one, or behind a trusted reverse proxy (TRUSTED_PROXIES)
    the one the proxies recorded in X-Forwarded-For, read from the right past every trusted hop (a
    client can write anything on the left). 0.0.0.0 when there is none (a request made in code, as
    Client.force_login makes): django-axes stores it in an address column, which PostgreSQL checks."""
    address = request.META.get("REMOTE_ADDR") or "0.0.0.0"
    trusted = settings.TRUSTED_PROXIES
    if address in trusted:
        for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
            hop = hop.strip()
            if hop and hop not in trusted:
                return _valid(hop) or address
    return address


def _valid(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def allow(scope: str, key: str, limit: int, window_s: int = 60) -> bool:
    """Count one hit for ``key`` in ``scope``; False once it exceeds ``limit`` within the window."""
    bucket = f"ratelimit:{scope}:{key}:{int(time.time() // window_s)}"
    try:
        cache.add(bucket, 0, timeout=window_s * 2)
        try:
            hits = cache.incr(bucket)
        except ValueError:  # evicted between add and incr
            cache.set(bucket, 1, timeout=window_s * 2)
            hits = 1
    except RedisError as exc:
        # The shared cache (Redis) is down: let the request through rather than refuse the room;
        # the question is stored as when the broker is down.
        log.warning("rate limit %s not counted, the cache is unreachable: %s", scope, exc)
        return True
    return hits <= limit
