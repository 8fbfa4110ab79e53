"""Tollgate settings, read from environment variables (see .env.example).

Unset DATABASE_URL means SQLite under data/; unset REDIS_URL means kombu's filesystem broker
under data/broker. Set, they mean PostgreSQL (pooled) and Redis.
"""

from datetime import timedelta
from pathlib import Path

from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from exceptions_app.env import (
    env_bool,
    env_database,
    env_hosts_and_networks,
    env_int,
    env_list,
    env_redis_url,
    env_str,
    env_use_local_values,
)
from exceptions_app.local_env import local_env_read

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("TOLLGATE_DATA_DIR", str(BASE_DIR / "data")))
# Where `make run` and the containers' gunicorn listen; printed with the demo logins.
TOLLGATE_BIND = env_str("TOLLGATE_BIND", "127.0.0.1:8000")

# `make run` writes DEBUG=true and a generated SECRET_KEY to data/local.env so that commands run by hand
# later use the same settings; read only when the environment does not set DEBUG (see local_env.py).
LOCAL_ENV_FILE = DATA_DIR / "local.env"
env_use_local_values(local_env_read(LOCAL_ENV_FILE))

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set it (and DEBUG=false) for a deployment; for a local checkout, "
            "run `make run` once (it writes data/local.env) or set DEBUG=true"
        )
    SECRET_KEY = "insecure-local-development-key-only-used-with-DEBUG-true"  # noqa: S105 (DEBUG only)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "template_partials",
    "csp",
    "exceptions_app",
    "review",
    "axes",
]

MIDDLEWARE = [
    # The caller's traceparent when tracing is on without Django's instrumentation (docs/integrations/opentelemetry.md)
    "exceptions_app.tracing.middleware.trace_context_middleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Outages and unexpected errors answer in the API's shape (a plain page in the console).
    "exceptions_app.outages.outage_middleware",
    "exceptions_app.api.errors.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "review.middleware.DomainErrorPages",
    # Last, as django-axes asks: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "exceptions_app.urls"
WSGI_APPLICATION = "exceptions_app.wsgi.application"

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
                "review.context.undo_offer",
            ],
        },
    },
]

DATABASES = {
    "default": env_database(
        "DATABASE_URL",
        default_sqlite_path=str(DATA_DIR / "tollgate.sqlite3"),
        pool=env_bool("TOLLGATE_DB_POOL", True),
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The covering index item_live_by_queue includes extra columns on PostgreSQL; SQLite (the embedded
# default) ignores them, which is fine at its sizes, so its warning about that is not shown.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Login throttling (django-axes): after TOLLGATE_LOGIN_FAILURE_LIMIT wrong passwords for one username
# from one address, that pair is refused (429, the lockout page) for TOLLGATE_LOGIN_COOLOFF_MINUTES;
# other users, and the same user elsewhere, are unaffected. The address is REMOTE_ADDR.
AUTHENTICATION_BACKENDS = [
    "exceptions_app.login_throttle.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env_int("TOLLGATE_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("TOLLGATE_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The cool-off runs from the lockout: attempts during it are refused without extending it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "exceptions_app.login_throttle.lockout_response"
AXES_USERNAME_CALLABLE = "exceptions_app.login_throttle.attempted_username"
# Never store the CSRF token or the password of a failed attempt (axes masks the password itself).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "password", "csrfmiddlewaretoken"]
AXES_VERBOSE = False  # no start-up banner in every management command's output
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "review:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Bounded request sizes: the largest batch (1,000 decisions) fits; anything bigger is refused.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("TOLLGATE_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# No script reads the CSRF cookie: pages carry the token in hx-headers (templates/base.html).
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_bool("TOLLGATE_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy: redirect to https, send HSTS, trust X-Forwarded-Proto.
TOLLGATE_HTTPS = env_bool("TOLLGATE_HTTPS", False)
if TOLLGATE_HTTPS:
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"
# A refused form token answers the styled 403 page that says why and what to do, not Django's bare one.
CSRF_FAILURE_VIEW = "review.errors.csrf_failure"
# Content-Security-Policy (django-csp): scripts and styles only from our own static files, no inline
# code, no framing, forms post only to us. The API docs page relaxes styles for itself (urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
    }
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "exceptions_app.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["exceptions_app.api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Strict JSON: no NaN, huge floats, duplicate keys, NUL, lone surrogates or deep nesting (a 400 naming the field).
    "DEFAULT_PARSER_CLASSES": ["exceptions_app.api.parsers.StrictJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "exceptions_app.api.errors.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tollgate API",
    "DESCRIPTION": "Exception queues and human review for AI outputs.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # The schema and the docs describe every endpoint: only for callers with a token or a session.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # The default enum hook, then the links between operations (submit -> held item -> claim -> resolve).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "exceptions_app.api.schema_links.add_links",
    ],
}
# How long a claim lasts without renewal; the console renews it while the operator is active.
TOLLGATE_CLAIM_LEASE_SECONDS = env_int("TOLLGATE_CLAIM_LEASE_SECONDS", 600, minimum=10)
# A decision made in the console can be undone this long; its delivery waits until then.
TOLLGATE_UNDO_SECONDS = env_int("TOLLGATE_UNDO_SECONDS", 8, minimum=0, maximum=300)
# An item is "due soon" (and gains priority) in the last quarter of its SLA window.
TOLLGATE_SLA_NEAR_FRACTION_PERCENT = env_int("TOLLGATE_SLA_NEAR_FRACTION_PERCENT", 25, minimum=1, maximum=100)
# Gate decisions older than this are purged (items keep their captured state).
TOLLGATE_DECISION_RETENTION_DAYS = env_int("TOLLGATE_DECISION_RETENTION_DAYS", 400, minimum=1)
# Policy replay: a window of up to this many decisions is answered within the request, a larger one
# by a worker (its answer kept TOLLGATE_REPLAY_KEEP_HOURS); no bound given means the last N days.
TOLLGATE_REPLAY_SYNC_MAX = env_int("TOLLGATE_REPLAY_SYNC_MAX", 20_000, minimum=0)
TOLLGATE_REPLAY_KEEP_HOURS = env_int("TOLLGATE_REPLAY_KEEP_HOURS", 24, minimum=1)
TOLLGATE_REPLAY_DEFAULT_DAYS = env_int("TOLLGATE_REPLAY_DEFAULT_DAYS", 7, minimum=1)
# A replay whose worker reported no progress for this long is taken for dead and marked failed.
TOLLGATE_REPLAY_STALE_SECONDS = env_int("TOLLGATE_REPLAY_STALE_SECONDS", 300, minimum=30)
# Delivery of resolutions back to execution.
# Host names and CIDR ranges callbacks may reach even when private (everything public is allowed).
TOLLGATE_CALLBACK_ALLOW = env_hosts_and_networks("TOLLGATE_CALLBACK_ALLOW", [])
TOLLGATE_DELIVERY_TIMEOUT_SECONDS = env_int("TOLLGATE_DELIVERY_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
TOLLGATE_DELIVERY_MAX_ATTEMPTS = env_int("TOLLGATE_DELIVERY_MAX_ATTEMPTS", 12, minimum=1)
TOLLGATE_DELIVERY_BUDGET_SECONDS = env_int("TOLLGATE_DELIVERY_BUDGET_SECONDS", 86_400, minimum=1)
TOLLGATE_DELIVERY_BACKOFF_SECONDS = env_int("TOLLGATE_DELIVERY_BACKOFF_SECONDS", 2, minimum=1)
TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS = env_int("TOLLGATE_DELIVERY_BACKOFF_MAX_SECONDS", 3600, minimum=1)
TOLLGATE_DELIVERY_SWEEP_SECONDS = env_int("TOLLGATE_DELIVERY_SWEEP_SECONDS", 2, minimum=1)
# A published drain not started within this many seconds counts as lost, and the sweep publishes another.
TOLLGATE_DELIVERY_REQUEUE_SECONDS = env_int("TOLLGATE_DELIVERY_REQUEUE_SECONDS", 60, minimum=1)
TOLLGATE_DELIVERY_RESPONSE_CAP_BYTES = 64 * 1024
TOLLGATE_WEBHOOK_ROTATION_HOURS = env_int("TOLLGATE_WEBHOOK_ROTATION_HOURS", 24, minimum=0)
# Queue snapshots for the dashboard and their retention; metric tallies run on the same beat.
TOLLGATE_SNAPSHOT_SECONDS = env_int("TOLLGATE_SNAPSHOT_SECONDS", 60, minimum=5)
TOLLGATE_SNAPSHOT_RETENTION_DAYS = env_int("TOLLGATE_SNAPSHOT_RETENTION_DAYS", 30, minimum=1)
# Capacity model: the recent window its rates are measured over, and the SLA attainment it staffs for.
TOLLGATE_CAPACITY_WINDOW_SECONDS = env_int("TOLLGATE_CAPACITY_WINDOW_SECONDS", 3600, minimum=60, maximum=7 * 86400)
TOLLGATE_CAPACITY_TARGET_PERCENT = env_int("TOLLGATE_CAPACITY_TARGET_PERCENT", 95, minimum=1, maximum=99)
# /metrics needs this bearer token when set; unset, it answers loopback clients only.
TOLLGATE_METRICS_TOKEN = env_str("TOLLGATE_METRICS_TOKEN")
# Requests per minute per API token (a batch counts as one request).
TOLLGATE_RATE_LIMIT_PER_MINUTE = env_int("TOLLGATE_RATE_LIMIT_PER_MINUTE", 12_000, minimum=1)
# How long each process keeps the tokens, workflows and queues the intake looked up. A change made
# in this process clears them at once; one made by another process shows within this time.
TOLLGATE_LOCAL_CACHE_SECONDS = env_int("TOLLGATE_LOCAL_CACHE_SECONDS", 5, minimum=0, maximum=300)

# Waiting agents (exceptions_app/waits/): each web process holds at most this many waits and streams
# at once and answers 503 with Retry-After past it; the embedded SQLite default looks for their
# changes this often (PostgreSQL notifies instead); streams send a heartbeat comment this often.
TOLLGATE_WAITERS_PER_PROCESS = env_int("TOLLGATE_WAITERS_PER_PROCESS", 10_000, minimum=1)
TOLLGATE_WAIT_RETRY_AFTER_SECONDS = 5
TOLLGATE_WAIT_POLL_SECONDS = 0.5
TOLLGATE_STREAM_HEARTBEAT_SECONDS = env_int("TOLLGATE_STREAM_HEARTBEAT_SECONDS", 15, minimum=1, maximum=300)
TOLLGATE_STREAM_RETRY_MS = 2000
# Threads per web process for every request that does not wait (as gunicorn's --threads before).
TOLLGATE_WEB_THREADS = env_int("TOLLGATE_WEB_THREADS", 8, minimum=1, maximum=256)

# Celery. The embedded default is kombu's filesystem transport: no server and no extra
# dependency, and it does not compete with the app for SQLite's single write lock.
REDIS_URL = env_redis_url("REDIS_URL")
BROKER_DIR = DATA_DIR / "broker"
# Rate-limit counters must be shared by every process: Redis when there is one; otherwise the
# database cache, since the embedded default runs several processes too.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tollgate",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "tollgate_cache"}}
CELERY_BROKER_TRANSPORT = None
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # kombu's Redis transport without its crash when a connection closes mid-outage (exceptions_app/broker_redis.py).
    CELERY_BROKER_TRANSPORT = "exceptions_app.broker_redis:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CELERY_BROKER_URL = "filesystem://"
    # kombu's filesystem transport with its empty-message race fixed (exceptions_app/broker.py).
    CELERY_BROKER_TRANSPORT = "exceptions_app.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "messages"),
        "data_folder_out": str(BROKER_DIR / "messages"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Exchange bindings; kombu's default is ./control, wherever the process was started.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 100
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_WORKER_MAX_TASKS_PER_CHILD = 1000
# Celery's Django fixup closes every connection before and after each task, and in a prefork worker
# Django's whole connection pool with it (celery/celery#10554), unless this is set: then it does so
# once every 2 x this many tasks. Without it each task opened a new PostgreSQL session (60 a second
# under the soak's load, most of PostgreSQL's CPU). exceptions_app.celery hands the connection back
# to the pool (or closes it, without one) after every task instead.
CELERY_DB_REUSE_MAX = 1000
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Queues split by kind of work so each can get its own workers when scaling out.
CELERY_TASK_ROUTES = {
    "exceptions_app.tasks.health.heartbeat": {"queue": "periodic"},
    "exceptions_app.tasks.periodic.*": {"queue": "periodic"},
    "exceptions_app.tasks.delivery.deliveries_drain": {"queue": "deliveries"},
    "exceptions_app.tasks.delivery.deliveries_sweep": {"queue": "periodic"},
    "exceptions_app.tasks.replay.replay_run_execute": {"queue": "default"},
}
TOLLGATE_CELERY_QUEUES = ["default", "deliveries", "periodic"]
# Declared, so a worker started without --queues (the command the Celery docs teach) consumes every
# one of them; --queues still picks a subset when scaling out.
CELERY_TASK_QUEUES = [Queue(name, Exchange(name), routing_key=name) for name in TOLLGATE_CELERY_QUEUES]
TOLLGATE_HEARTBEAT_SECONDS = env_int("TOLLGATE_HEARTBEAT_SECONDS", 10, minimum=1)
# Each worker records the queues it consumes this often; one unseen for three times as long is gone.
TOLLGATE_CONSUMER_HEARTBEAT_SECONDS = env_int("TOLLGATE_CONSUMER_HEARTBEAT_SECONDS", 10, minimum=1, maximum=600)
# A due delivery waiting longer than this while a worker consumes `deliveries` counts as stuck.
TOLLGATE_PIPELINE_STUCK_SECONDS = env_int("TOLLGATE_PIPELINE_STUCK_SECONDS", 300, minimum=10)
# How often the lifecycle sweeps (leases, snoozes, SLA, deadlines) run.
TOLLGATE_SWEEP_SECONDS = env_int("TOLLGATE_SWEEP_SECONDS", 15, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "heartbeat": {"task": "exceptions_app.tasks.health.heartbeat", "schedule": float(TOLLGATE_HEARTBEAT_SECONDS)},
    **{
        name: {
            "task": f"exceptions_app.tasks.periodic.{name}",
            "schedule": float(TOLLGATE_SWEEP_SECONDS),
            "options": {"expires": float(TOLLGATE_SWEEP_SECONDS)},
        }
        for name in ("claims_expire", "snoozes_wake", "sla_escalate", "items_expire")
    },
    "decisions_purge": {"task": "exceptions_app.tasks.periodic.decisions_purge", "schedule": 3600.0},
    "snapshots_take": {
        "task": "exceptions_app.tasks.periodic.snapshots_take",
        "schedule": float(TOLLGATE_SNAPSHOT_SECONDS),
        "options": {"expires": float(TOLLGATE_SNAPSHOT_SECONDS)},
    },
    "tallies_advance": {
        "task": "exceptions_app.tasks.periodic.tallies_advance",
        "schedule": 15.0,
        "options": {"expires": 15.0},
    },
    "snapshots_purge": {"task": "exceptions_app.tasks.periodic.snapshots_purge", "schedule": 3600.0},
    "replays_purge": {"task": "exceptions_app.tasks.periodic.replays_purge", "schedule": 3600.0},
    "replays_fail_stale": {
        "task": "exceptions_app.tasks.periodic.replays_fail_stale",
        "schedule": 60.0,
        "options": {"expires": 60.0},
    },
    "deliveries_sweep": {
        "task": "exceptions_app.tasks.delivery.deliveries_sweep",
        "schedule": float(TOLLGATE_DELIVERY_SWEEP_SECONDS),
        "options": {"expires": float(TOLLGATE_DELIVERY_SWEEP_SECONDS)},
    },
}

# Tracing is off unless OTEL_* variables turn it on (exceptions_app/tracing/configuration.py). With it on,
# these instrumentations too (celery, django, psycopg); django's and psycopg's cost more than the target allows.
TOLLGATE_TRACE_INSTRUMENTATIONS = env_list("TOLLGATE_TRACE_INSTRUMENTATIONS", ["celery"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("TOLLGATE_LOG_LEVEL", "INFO")},
}
