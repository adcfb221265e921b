"""Settings, read from the environment (see README "Configuration").

With no ``DATABASE_URL`` the app runs on a SQLite file under ``var/``; with no ``REDIS_URL``
Celery uses kombu's filesystem transport under ``var/``. Same code paths either way.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
# Named here, created at startup (swampclub.folders, from ScoringConfig.ready), not on import.
VAR_DIR = Path(os.environ.get("SWAMPCLUB_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    """Read a boolean from the environment ("1", "true", "yes", "on" are true)."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    """Read a comma-separated list from the environment."""
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
# A development key is used only when none is given; production settings refuse to start
# without SECRET_KEY (swampclub/settings_production.py).
SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-not-secret-swampclub-" + "x" * 40
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "scoring",
    "awards",
    "members",
    "staff",
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
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "swampclub.http.HtmxLoginRedirectMiddleware",
]

ROOT_URLCONF = "swampclub.urls"
WSGI_APPLICATION = "swampclub.wsgi.application"

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
                "django.template.context_processors.csp",
            ],
        },
    },
]
# Widget HTML remembered per process (swampclub/form_renderer.py).
FORM_RENDERER = "swampclub.form_renderer.MemoDjangoTemplates"

# --- Database -------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "swampclub.sqlite3"),
            "OPTIONS": {
                # WAL lets the web process read while the worker writes; IMMEDIATE takes the
                # write lock at BEGIN so concurrent writers wait (busy timeout) instead of
                # failing with "database is locked" half-way through a transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits, worker heartbeat) ---------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Fail fast when Redis is down: ingest must keep answering from PostgreSQL.
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
            "KEY_PREFIX": "swampclub",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Auth -------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve straight from the app/static folders in development and tests; production serves
# the collected, hashed files (settings_production).
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Security headers (production settings add the HTTPS-only ones) ------------------------
# A strict CSP: scripts only from our origin with the per-request nonce; no inline styles.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "frame-ancestors": [CSP.NONE],
    "form-action": [CSP.SELF],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Celery -----------------------------------------------------------------------------------
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
else:
    # kombu's filesystem transport: a real worker and beat with no server to run.
    _broker_dir = VAR_DIR / "broker"
    # The host means nothing to this transport, but without one kombu logs "No hostname was
    # supplied. Reverting to default 'localhost'" on every connection.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
# Work is acknowledged after it ran; a worker killed mid-task gets the message redelivered.
# Every task is idempotent, and PostgreSQL (not the broker) holds the pending work.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing must not hang a web request when the broker is down (PostgreSQL holds the work).
CELERY_BROKER_CONNECTION_TIMEOUT = 1
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

CONSUME_INTERVAL_S = int(os.environ.get("CONSUME_INTERVAL_S", "5"))
SCORE_BATCH_INTERVAL_S = int(os.environ.get("SCORE_BATCH_INTERVAL_S", "30"))
WORKER_HEARTBEAT_INTERVAL_S = 30
CELERY_BEAT_SCHEDULE = {
    "consume-events": {
        "task": "scoring.events_consume",
        "schedule": timedelta(seconds=CONSUME_INTERVAL_S),
        "options": {"expires": CONSUME_INTERVAL_S},
    },
    "process-score-batch": {
        "task": "scoring.scores_process_batch",
        "schedule": timedelta(seconds=SCORE_BATCH_INTERVAL_S),
        "options": {"expires": SCORE_BATCH_INTERVAL_S},
    },
    # A worker writes PipelineRun "worker" each beat: staff health can tell one is running.
    "worker-heartbeat": {
        "task": "scoring.heartbeat",
        "schedule": timedelta(seconds=WORKER_HEARTBEAT_INTERVAL_S),
        "options": {"expires": WORKER_HEARTBEAT_INTERVAL_S},
    },
    # Confirmed bulk-grant files whose task message was lost (broker down at confirm time, a
    # worker killed mid-file) are restarted from their last committed chunk.
    "resume-bulk-grants": {
        "task": "awards.bulk_jobs_resume",
        "schedule": timedelta(seconds=60),
        "options": {"expires": 60},
    },
}

# --- Product settings -------------------------------------------------------------------------
AWARD_MAX_POINTS = int(os.environ.get("AWARD_MAX_POINTS", "100000"))
CONSUMER_BATCH_SIZE = int(os.environ.get("CONSUMER_BATCH_SIZE", "5000"))
SCORE_BATCH_SIZE = int(os.environ.get("SCORE_BATCH_SIZE", "5000"))
INGEST_MAX_EVENTS = 1000
INGEST_MAX_BYTES = 1024 * 1024
INGEST_RATE_LIMIT = int(os.environ.get("INGEST_RATE_LIMIT", "600"))  # requests per key...
INGEST_RATE_WINDOW_S = int(os.environ.get("INGEST_RATE_WINDOW_S", "60"))  # ...per window
# PostgreSQL: requests of at least this many events are stored with a look-up of the stored
# keys and a COPY instead of one INSERT ... ON CONFLICT; 0 (the default) keeps the INSERT for
# every request. Measured no faster on a busy 2-core machine (docs/performance.md, "Ingest:
# the COPY store"); worth trying where PostgreSQL, not the web workers, is the bottleneck.
INGEST_COPY_MIN_EVENTS = int(os.environ.get("INGEST_COPY_MIN_EVENTS", "0"))
LEADERBOARD_EXCLUDE_STAFF = env_bool("LEADERBOARD_EXCLUDE_STAFF", True)
LEADERBOARD_PAGE_SIZE = 50
# The 7d/30d boards are computed whole in one query and cached; any score change invalidates
# the cached board at once (docs/members.md), this only bounds what no fingerprint sees.
LEADERBOARD_WINDOW_CACHE_S = int(os.environ.get("LEADERBOARD_WINDOW_CACHE_S", "60"))

# Activity formula constants (SPEC §6); any key here overrides the default.
SCORING: dict = {}

# Tiers (SPEC §7): (ordinal, name, floor).
TIERS = [
    (1, "Sludge Whelp", 0),
    (2, "Murk Lurker", 20_000),
    (3, "Mire Walker", 60_000),
    (4, "Bog Stalker", 100_000),
    (5, "Fen Haunt", 150_000),
    (6, "Reed Wraith", 210_000),
    (7, "Silt Warden", 280_000),
    (8, "Peat Shaman", 360_000),
    (9, "Miasma Lord", 450_000),
    (10, "Murk Beast", 550_000),
    (11, "Bayou Revenant", 700_000),
    (12, "Quagmire Sovereign", 900_000),
    (13, "Drowned Oracle", 1_150_000),
    (14, "Abyssal Leviathan", 1_500_000),
    (15, "Black Water Wraith", 1_900_000),
]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {"swampclub": {"level": os.environ.get("LOG_LEVEL", "INFO")}},
}

# --- Telemetry time rules (SPEC §4; docs/ingest.md "Time") ---
# A startedAt/timestamp further ahead than this is refused (400): clocks drift a little,
# a streak is not built from the future.
TELEMETRY_MAX_FUTURE_S = 300
# Events older than this when they arrive are stored but never counted (staff see them as
# "late"): offline CLIs spool up to 7 days, so 30 leaves room without letting a key backfill
# a streak of months.
TELEMETRY_MAX_AGE_DAYS = int(os.environ.get("TELEMETRY_MAX_AGE_DAYS", "30"))
# --- Telemetry partitions and retention (PostgreSQL; docs/scaling.md "Partitions") ---
# Monthly partitions of the events table exist this many months ahead of the current one.
TELEMETRY_PARTITIONS_AHEAD = int(os.environ.get("TELEMETRY_PARTITIONS_AHEAD", "3"))
# Months of telemetry kept in the database: a partition whose whole month is older than the
# first day of the current month minus this many months, with no pending event left, is
# detached, written to TELEMETRY_ARCHIVE_DIR as gzipped CSV and dropped. It must stay well
# beyond TELEMETRY_MAX_AGE_DAYS (anything older is never counted), or retention refuses.
TELEMETRY_RETENTION_MONTHS = int(os.environ.get("TELEMETRY_RETENTION_MONTHS", "13"))
TELEMETRY_ARCHIVE_DIR = Path(os.environ.get("TELEMETRY_ARCHIVE_DIR", VAR_DIR / "telemetry-archive"))
TELEMETRY_PARTITIONS_INTERVAL_S = int(os.environ.get("TELEMETRY_PARTITIONS_INTERVAL_S", "3600"))
CELERY_BEAT_SCHEDULE["telemetry-partitions"] = {
    "task": "scoring.telemetry_partitions",
    "schedule": timedelta(seconds=TELEMETRY_PARTITIONS_INTERVAL_S),
    "options": {"expires": TELEMETRY_PARTITIONS_INTERVAL_S},
}
# --- Sign-in throttling, CLI sign-in and self-service keys (accounts app, docs/accounts.md) ---
INSTALLED_APPS += ["axes", "accounts"]
# django-axes watches every authenticate() call (site, admin and the CLI's JSON sign-in) and
# must come first; its middleware turns a lockout into our 429 page or JSON answer.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]
# Locked per account and, separately, per client IP after this many failures in a row...
AXES_FAILURE_LIMIT = int(os.environ.get("LOGIN_FAILURE_LIMIT", "10"))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# ...for this long after the last failure (a failure while locked restarts the clock).
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.throttle.lockout_response"
# The client IP is REMOTE_ADDR (django-ipware is not installed, so no forwarded header is
# trusted); behind a reverse proxy, set AXES_CLIENT_IP_CALLABLE to read the proxy's header.
# Each CLI sign-in answers a token for one key creation, valid this long.
CLI_SIGN_IN_TOKEN_TTL = timedelta(minutes=10)
# --- Broker connection loss (docs/guarantees.md, "Outages") ------------------------------------
# Pinned, not left to Celery's default (False in 5.x, announced to become True in 6.0): when a
# worker loses the broker, a running late-acked task keeps running and commits its batch. The
# work is in PostgreSQL, which the broker outage does not touch; killing the batch would only
# roll it back and redo it. Its message, which can no longer be acknowledged, is redelivered
# later and finds nothing pending (every task is idempotent).
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# --- Webhooks (docs/webhooks.md) ---------------------------------------------------------------
INSTALLED_APPS += ["webhooks"]
# Loopback/private targets are refused unless allowed (development, tests, local receivers).
WEBHOOK_ALLOW_PRIVATE_URLS = env_bool("WEBHOOK_ALLOW_PRIVATE_URLS", DEBUG)
# settings_production turns this on: endpoints must then be https.
WEBHOOK_REQUIRE_HTTPS = env_bool("WEBHOOK_REQUIRE_HTTPS", False)
WEBHOOK_TIMEOUT_S = float(os.environ.get("WEBHOOK_TIMEOUT_S", "5"))  # connect and each read
# A worker holds a delivery this long per attempt; one that dies is replaced after it.
WEBHOOK_LEASE_S = float(os.environ.get("WEBHOOK_LEASE_S", "60"))
WEBHOOK_MAX_ATTEMPTS = int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "10"))  # then "dead"
# Backoff: base * 2^(attempt-1), capped, with jitter (10 attempts ≈ 40 minutes in all).
WEBHOOK_BACKOFF_BASE_S = float(os.environ.get("WEBHOOK_BACKOFF_BASE_S", "5"))
WEBHOOK_BACKOFF_MAX_S = float(os.environ.get("WEBHOOK_BACKOFF_MAX_S", "1800"))
WEBHOOK_RETRY_AFTER_MAX_S = float(os.environ.get("WEBHOOK_RETRY_AFTER_MAX_S", "3600"))
# After a rotation the previous secret also signs for this long.
WEBHOOK_SECRET_GRACE_S = int(os.environ.get("WEBHOOK_SECRET_GRACE_S", str(24 * 3600)))
# Outbox events older than this are never fanned out by the dispatcher (replay still can).
WEBHOOK_DISPATCH_WINDOW_S = int(os.environ.get("WEBHOOK_DISPATCH_WINDOW_S", str(24 * 3600)))
WEBHOOK_DISPATCH_BATCH = 5000
WEBHOOK_SWEEP_INTERVAL_S = int(os.environ.get("WEBHOOK_SWEEP_INTERVAL_S", "15"))
# A pending delivery is "left behind" once due for this long without being sent.
WEBHOOK_SWEEP_GRACE_S = int(os.environ.get("WEBHOOK_SWEEP_GRACE_S", "30"))
# A sender claims up to this many of an endpoint's deliveries at a time and sends them
# with this many threads (keep-alive connections) per endpoint, for at most the budget.
WEBHOOK_BATCH_SIZE = int(os.environ.get("WEBHOOK_BATCH_SIZE", "200"))
WEBHOOK_ENDPOINT_CONCURRENCY = int(os.environ.get("WEBHOOK_ENDPOINT_CONCURRENCY", "8"))
WEBHOOK_RUN_BUDGET_S = float(os.environ.get("WEBHOOK_RUN_BUDGET_S", "20"))
# Delivered deliveries, and outbox events left with no delivery, are deleted after this.
WEBHOOK_RETENTION_DAYS = int(os.environ.get("WEBHOOK_RETENTION_DAYS", "30"))
# Deliveries run on their own queue (a worker started with -Q webhooks, see Procfile).
CELERY_TASK_ROUTES = {"webhooks.*": {"queue": "webhooks"}}
CELERY_BEAT_SCHEDULE["webhooks-sweep"] = {
    "task": "webhooks.deliveries_sweep",
    "schedule": timedelta(seconds=WEBHOOK_SWEEP_INTERVAL_S),
    "options": {"expires": WEBHOOK_SWEEP_INTERVAL_S},
}
CELERY_BEAT_SCHEDULE["webhooks-prune"] = {
    "task": "webhooks.prune",
    "schedule": timedelta(hours=1),
    "options": {"expires": 3600},
}
# --- Award governance: four-eyes approval, granter budgets, audit trail (docs/awards.md) ----
# A grant of more points than this (form, bulk row or award event) becomes an award request
# that a second staff member with ``awards.approve_award`` must approve.
AWARD_APPROVAL_THRESHOLD = int(os.environ.get("AWARD_APPROVAL_THRESHOLD", "10000"))
# Points one granter may grant per rolling window (a superuser may override it per granter).
AWARD_GRANTER_BUDGET = int(os.environ.get("AWARD_GRANTER_BUDGET", "50000"))
AWARD_GRANTER_BUDGET_DAYS = 30
# Superusers are held to the budget too unless this says otherwise.
AWARD_BUDGET_EXEMPT_SUPERUSERS = env_bool("AWARD_BUDGET_EXEMPT_SUPERUSERS", False)
AWARD_REQUEST_TTL_DAYS = int(os.environ.get("AWARD_REQUEST_TTL_DAYS", "14"))
# /staff/ flags a granter giving one member more than this many awards in 30 days.
AWARD_FLAG_REPEAT_COUNT = int(os.environ.get("AWARD_FLAG_REPEAT_COUNT", "3"))
INSTALLED_APPS += ["pgtrigger", "audit"]
# Records the actor, IP and user agent of staff writes (and any staff POST nothing else audited).
MIDDLEWARE += ["audit.middleware.AuditMiddleware"]
CELERY_BEAT_SCHEDULE["expire-award-requests"] = {
    "task": "awards.award_requests_expire",
    "schedule": timedelta(hours=1),
    "options": {"expires": 3600},
}
