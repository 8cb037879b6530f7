"""Settings: embedded defaults (SQLite, in-process functions, eager tasks); the environment switches
to the real services (``DATABASE_URL``, ``REDIS_URL``, ``INFERENCE_BACKEND``)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from webapp.env import envbool, envchoice, envfloat, envint, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = envbool("DEBUG", False)


def _secret_key() -> str:
    """SECRET_KEY from the environment; else a random one kept in VAR_DIR (never in the repository)."""
    key = envstr("SECRET_KEY", "")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long")
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h.strip() for h in envstr("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in envstr("CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

INSTALLED_APPS = [
    # First: its runserver (a listen backlog for a room) overrides staticfiles' one.
    "webapp.core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "csp",
    "webapp.events",
    "webapp.questions",
    "webapp.dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Last, as django-axes asks: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "webapp.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]
WSGI_APPLICATION = "webapp.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"), conn_max_age=envint("DB_CONN_MAX_AGE", 60)
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and envbool("DB_POOL", True):
    # A pool per process: a thread waits for one of DB_POOL_MAX_SIZE connections instead of opening its
    # own (200 attendees posting at once to one server made 200 and met max_connections, 100).
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps the connections
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": envint("DB_POOL_MAX_SIZE", 16, minimum=1),
        "timeout": envint("DB_POOL_TIMEOUT_S", 20, minimum=1),
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # SQLite for concurrent use (the embedded default serves many attendees from threads): WAL lets
    # readers run beside the one writer; a transaction takes the write lock when it begins
    # (IMMEDIATE), so two of them never deadlock upgrading a read lock, which the busy timeout
    # cannot wait out ("database is locked" at once); the timeout waits for the writer instead.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": envint("SQLITE_BUSY_TIMEOUT_S", 20, minimum=1),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)
# Serve from the finders in development and tests; production runs collectstatic and sets it to 0.
WHITENOISE_USE_FINDERS = envbool("WHITENOISE_USE_FINDERS", True)

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "events:mine"
LOGOUT_REDIRECT_URL = "/"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# HTTPS: off by default (runserver speaks plain HTTP); a production set-up turns them on and then
# passes `manage.py check --deploy` clean (README, "Running in production").
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# The reverse proxies in front (their addresses, comma-separated): a request from one of them is
# counted under the client address it recorded in X-Forwarded-For (webapp/core/ratelimit.py), not
# under the proxy's own, so the per-address limits and the sign-in throttle see each client.
TRUSTED_PROXIES = frozenset(a.strip() for a in envstr("TRUSTED_PROXIES", "").split(",") if a.strip())
# Only behind a proxy that sets X-Forwarded-Proto itself: otherwise a client could claim HTTPS.
if envbool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Failed sign-ins (/accounts/login/ and /admin/login/), counted by django-axes in the database: after
# LOGIN_FAILURE_LIMIT failures a user name is locked from every address, and an address for every
# user name, until LOGIN_COOLOFF_MINUTES pass without another failure. authenticate() then needs
# the request: tests sign in with Client.force_login, not Client.login.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# A success must not wipe the failures: the shared demo account's password is printed, and signing
# in with it would clear an address's failures against every other user name.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "webapp.core.ratelimit.client_address"  # the address the other rate limits count
AXES_VERBOSE = False  # no start-up banner in every command's output

# No inline script or style anywhere: page data travels in json_script blocks, which are not run.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# The functions: in-process by default; `http` for the function host, a Function URL or a Cloud
# Function (INFERENCE_URL: the host's root, or a template with {function}); `lambda` for boto3's
# lambda.invoke (LAMBDA_FUNCTION_NAMES template, AWS_REGION, LAMBDA_ENDPOINT_URL to aim at the host).
INFERENCE_BACKEND = envchoice("INFERENCE_BACKEND", "local", ("local", "http", "lambda"))
INFERENCE_URL = envstr("INFERENCE_URL", "http://127.0.0.1:9000")
INFERENCE_TIMEOUT_S = envint("INFERENCE_TIMEOUT_S", 10, minimum=1)
LAMBDA_FUNCTION_NAMES = envstr("LAMBDA_FUNCTION_NAMES", "{function}")
LAMBDA_ENDPOINT_URL = envstr("LAMBDA_ENDPOINT_URL", "") or None
AWS_REGION = envstr("AWS_REGION", "us-east-1")
EMBEDDING_MODEL = envstr("EMBEDDING_MODEL", "") or None
SENTIMENT_MODEL = envstr("SENTIMENT_MODEL", "") or None
# The pair reader that checks a new question's best match before it is flagged as a duplicate:
# empty for the shipped one (when the embedding model's card names one), "none" for cosine thresholds only.
VERIFIER_MODEL = envstr("VERIFIER_MODEL", "")
if "{function}" not in LAMBDA_FUNCTION_NAMES:
    raise ImproperlyConfigured("LAMBDA_FUNCTION_NAMES must contain {function}, e.g. asktwice-{function}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    # One line per task is noise in the web process's log (eager mode) and in benchmarks.
    "loggers": {"celery.app.trace": {"level": "WARNING"}, "faiss.loader": {"level": "WARNING"}},
}

# Celery: a Redis broker when REDIS_URL is set; otherwise tasks run eagerly, in the request.
REDIS_URL = envstr("REDIS_URL", "")
# The cache holds the rate-limit counters: with several web processes they must be shared, or each
# process would count its own and N processes would allow N times the limit.
CACHE_URL = envstr("CACHE_URL", REDIS_URL)
if CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "asktwice",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", not REDIS_URL)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 90, minimum=1)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# A publish from a request gives up within about a second when the broker is down: the question is
# stored, and the sweeper sends it later (webapp/questions/tasks.py::enqueue).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.25, "interval_max": 0.5}
# A message a worker took but did not acknowledge (killed, or holding a retry until its countdown)
# goes back to the queue after this long; it must exceed the longest task and retry countdown, or a
# running task would be handed to a second worker. The sweeper resends long before that.
BROKER_VISIBILITY_TIMEOUT_S = envint("BROKER_VISIBILITY_TIMEOUT_S", 600, minimum=1)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S, "socket_connect_timeout": 2}
# Processing retries transient function failures with exponential backoff, up to this many times.
QUESTION_MAX_RETRIES = envint("QUESTION_MAX_RETRIES", 5, minimum=0)
QUESTION_RETRY_BACKOFF_MAX_S = 60  # the longest countdown between two tries (webapp/questions/tasks.py)

# Recovery: the database is the record, the broker only a doorbell (webapp/questions/recovery.py).
# Redis here keeps nothing on disk, a killed worker's task waits for the visibility timeout, and a
# publish can fail after the question is stored. A sweeper (a thread in every Celery worker, and
# `manage.py sweep_questions`) sends again what is still pending this long after its last send, and
# what failed for a transient reason, until a question has been tried QUESTION_MAX_ATTEMPTS times.
QUESTION_RESEND_AFTER_S = envint("QUESTION_RESEND_AFTER_S", 60, minimum=1)
QUESTION_MAX_ATTEMPTS = envint("QUESTION_MAX_ATTEMPTS", 20, minimum=1)
QUESTION_SWEEP_INTERVAL_S = envint("QUESTION_SWEEP_INTERVAL_S", 15, minimum=0)  # 0: no thread in workers
QUESTION_SWEEP_BATCH = envint("QUESTION_SWEEP_BATCH", 500, minimum=1)
# Without a broker (eager tasks, the embedded default) a question is processed by a few threads of
# the web process, never in the attendee's request: the POST waits for it at most this long, then
# answers with the question still pending (webapp/questions/inprocess.py). The web process then
# runs the sweeper too (webapp/wsgi.py), since there is no Celery worker to run it.
QUESTION_INLINE_WAIT_S = envfloat("QUESTION_INLINE_WAIT_S", 0.5, minimum=0)
QUESTION_INLINE_WORKERS = envint("QUESTION_INLINE_WORKERS", 2, minimum=1)
QUESTION_SWEEP_IN_WEB = envbool("QUESTION_SWEEP_IN_WEB", CELERY_TASK_ALWAYS_EAGER)
# An attendee may edit (the text is processed again) or withdraw their question for this long after
# asking, while it is not answered or on stage (webapp/questions/actions.py).
QUESTION_EDIT_WINDOW_S = envint("QUESTION_EDIT_WINDOW_S", 300, minimum=0)

# An event's FAISS index is exact (flat) below this many vectors and an HNSW graph from there
# (webapp/questions/index.py; the measurements behind the default are in docs/app.md).
INDEX_HNSW_MIN_VECTORS = envint("INDEX_HNSW_MIN_VECTORS", 50_000, minimum=1)
# Each process caches the indexes of the events it served, least recently used dropped past this
# many vectors in all (about 1.5 KB each: 200,000 is some 300 MB; python -m benchmarks.index_cache).
INDEX_CACHE_MAX_VECTORS = envint("INDEX_CACHE_MAX_VECTORS", 200_000, minimum=1)

# Votes change an event's live version (webapp/questions/live.py) at most once in this many
# seconds: in a voting room the polls between two bumps share one read of the list (listing.py).
# Others see a vote within this and a poll interval (1.5 s); 0: every vote bumps.
LIVE_VOTE_WINDOW_S = envfloat("LIVE_VOTE_WINDOW_S", 0.5, minimum=0)

# Rate limits on the public endpoints, per attendee (the per-address limits are ten times these).
POSTS_PER_MINUTE = envint("POSTS_PER_MINUTE", 6, minimum=1)
POSTS_PER_MINUTE_PER_ADDRESS = envint("POSTS_PER_MINUTE_PER_ADDRESS", 60, minimum=1)
VOTES_PER_MINUTE = envint("VOTES_PER_MINUTE", 60, minimum=1)
SIMILAR_PER_MINUTE = envint("SIMILAR_PER_MINUTE", 60, minimum=1)

if BROKER_VISIBILITY_TIMEOUT_S <= max(CELERY_TASK_TIME_LIMIT, QUESTION_RETRY_BACKOFF_MAX_S):
    raise ImproperlyConfigured(
        "BROKER_VISIBILITY_TIMEOUT_S must exceed CELERY_TASK_TIME_LIMIT and the longest retry countdown "
        f"({max(CELERY_TASK_TIME_LIMIT, QUESTION_RETRY_BACKOFF_MAX_S)} s)"
    )

# Attendee identities (webapp/questions/attendees.py)
# New attendee ids the event page gives one client address a minute. An id is what makes a vote
# count once, so this bounds how many voters one machine can become; a venue behind one NAT address
# joins over a few minutes (past the limit, the page reads but cannot ask or vote until a reload).
ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS = envint("ATTENDEE_IDS_PER_MINUTE_PER_ADDRESS", 60, minimum=1)
