"""gunicorn for the web app (deploy/stack.sh, and production behind a reverse proxy).

    gunicorn -c deploy/gunicorn.conf.py webapp.wsgi

Threaded workers: a page's poll spends most of its time waiting on the database, so a few
processes with several threads each serve a room on two cores. Every setting reads the environment.
"""

from __future__ import annotations

import multiprocessing
import os

bind = os.environ.get("BIND", f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}")
workers = int(os.environ.get("WEB_WORKERS", str(min(4, multiprocessing.cpu_count() + 1))))
if not (os.environ.get("CACHE_URL") or os.environ.get("REDIS_URL")):
    # Rate limits and the pages' live versions live in the cache: without a shared one (Redis),
    # each process would keep its own, so one process serves (with threads).
    workers = 1
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
# A request that takes this long is a stuck worker: gunicorn restarts it.
timeout = int(os.environ.get("WEB_TIMEOUT_S", "30"))
graceful_timeout = 10
keepalive = 5
# The reverse proxy in front (TLS) is trusted for X-Forwarded-* only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
backlog = 2048
# gunicorn's control socket defaults to one path per user, shared by every instance on the machine.
control_socket = os.environ.get("WEB_CONTROL_SOCKET", f"/tmp/asktwice-gunicorn-{bind.replace(':', '-')}.ctl")
accesslog = os.environ.get("WEB_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
