from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
application = get_wsgi_application()


def _sweep_in_web() -> None:
    """Without a Celery worker (eager tasks) nothing else would send a lost question again."""
    from django.conf import settings

    from webapp.questions import recovery

    if settings.QUESTION_SWEEP_IN_WEB:
        recovery.start_sweeper()


_sweep_in_web()
