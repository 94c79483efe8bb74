"""Django settings for AP Intake.

Every knob is read from the environment here and nowhere else; each one is
documented in docs/configuration.md.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dj_database_url
import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

# A local, git-ignored env file (`make run` writes `.env` in the checkout with
# development values) fills in what the real environment does not set: real
# environment variables always win. ENV_FILE names another file; empty disables
# it (the test suite does, so a developer's `.env` never leaks into tests).
ENV_FILE = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
ENV_FILE_READ = None
if ENV_FILE and Path(ENV_FILE).is_file():
    environ.Env.read_env(ENV_FILE, overwrite=False)
    ENV_FILE_READ = ENV_FILE
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for development."
        )
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"  # noqa: S105 - DEBUG only

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
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_celery_results",
    "core",
    "jobs",
    "invoices",
    "emailsync",
    "monitoring",
    "events",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.ApiRequestLimitsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "config.middleware.ApiTrailingSlashMiddleware",  # before CommonMiddleware's APPEND_SLASH
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------
# PostgreSQL in production and tests; SQLite only as the zero-setup default.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
_database = dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))
_database["CONN_HEALTH_CHECKS"] = True
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # web + worker + beat share one file: WAL lets readers run beside a writer,
    # IMMEDIATE takes the write lock at BEGIN so two writers queue instead of
    # deadlocking, and the busy timeout makes them wait rather than fail.
    _database["CONN_MAX_AGE"] = 0
    _database["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
    }
    # A file, not memory, so worker processes started by tests see the test data.
    _database["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker ------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")


def _next_redis_db(url: str) -> str:
    """The same Redis server, the next database number: the cache must never share
    the broker's database, or clearing the cache would drop queued messages."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


CACHES = {
    "default": {
        # A frozen Redis costs one short timeout, then throttles and cached values fall
        # back to a per-process cache for CACHE_RETRY_AFTER_SECONDS (config/cache.py).
        "BACKEND": "config.cache.ResilientRedisCache",
        "LOCATION": env_str("CACHE_URL", _next_redis_db(REDIS_URL)),
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "apintake"),
        "RETRY_AFTER": env_float("CACHE_RETRY_AFTER_SECONDS", 10.0),
        "OPTIONS": {
            "socket_timeout": env_float("CACHE_SOCKET_TIMEOUT", 0.5),
            "socket_connect_timeout": env_float("CACHE_SOCKET_TIMEOUT", 0.5),
        },
    }
}

# --- Auth, i18n ------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/admin/login/"
# ModelBackend with a user's permissions read in one statement instead of two ORM queries (core/auth.py).
AUTHENTICATION_BACKENDS = ["core.auth.OneQueryModelBackend"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- Static and media ------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Bodies other than file uploads: over this the API answers 413 before reading them.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
# An uploaded file larger than this is streamed to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = env_int("FILE_UPLOAD_MAX_MEMORY_SIZE", 5 * 1024 * 1024)
FILE_UPLOAD_HANDLERS = [
    "config.uploads.SizeLimitUploadHandler",  # refuses over-size files while they stream
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# --- Security ---------------------------------------------------------------
# The secure defaults are on unless DEBUG; a deployment behind plain HTTP (or a
# TLS-terminating proxy that does its own redirect) turns them off explicitly.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]
if env_bool("SECURE_HSTS_PRELOAD", False) is False and not DEBUG:
    SILENCED_SYSTEM_CHECKS = ["security.W021"]  # HSTS preload is a deliberate opt-in

# Content-Security-Policy (django-csp): scripts only from our own origin, never inline, so an
# injected <script> or onclick= does not run. Styles may be inline (the admin's and Swagger UI's
# style attributes); images also as data: URLs (Swagger UI's icons). CSP_REPORT_ONLY=1 only reports.
_CSP_DIRECTIVES = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
if env_bool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = {"DIRECTIVES": _CSP_DIRECTIVES}
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP_DIRECTIVES}

# Stored secrets (mailbox passwords, tokens) are encrypted with this key. When
# unset, a key is derived from SECRET_KEY; `check --deploy` warns about that.
FIELD_ENCRYPTION_KEY = env_str("FIELD_ENCRYPTION_KEY")

# --- Email -------------------------------------------------------------------
EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "ap-intake@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ADMINS = [("Admin", address) for address in env_list("ADMIN_EMAILS", [])]

# --- REST framework ------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.DepthLimitedJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "2000/hour"),
        "anon": env_str("API_THROTTLE_ANON", "60/hour"),
        "trigger": env_str("API_THROTTLE_TRIGGER", "120/minute"),
        # POST /api/v1/auth/token/: every attempt counts, per user name and per client address
        "login-user": env_str("API_THROTTLE_LOGIN_USER", "10/hour"),
        "login-ip": env_str("API_THROTTLE_LOGIN_IP", "60/hour"),
    },
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "EXCEPTION_HANDLER": "core.api.exception_handler",
    # How many proxies put their address in X-Forwarded-For; the client is the address the
    # outermost one saw. 0 reads REMOTE_ADDR only, so a forged header cannot dodge a throttle.
    "NUM_PROXIES": env_int("API_NUM_PROXIES", 1 if env_bool("BEHIND_TLS_PROXY", False) else 0),
}
# The API authenticates with a token header, which browsers never send on their
# own, and a 401 (not 403) tells a script it must log in.
SPECTACULAR_SETTINGS = {
    "TITLE": "AP Intake API",
    "DESCRIPTION": "Supplier invoice intake: jobs, invoices, exports, mailboxes and monitoring.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models have a "status"; name each choice set after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "jobs.models.JobStatus",
        "InvoiceStatusEnum": "invoices.models.InvoiceStatus",
        "ExportStatusEnum": "invoices.models.ExportBatch.Status",
        "SyncRunStatusEnum": "emailsync.models.SyncRun.Status",
        "ScanRunStatusEnum": "monitoring.models.ScanRun.Status",
        "AlertStatusEnum": "monitoring.models.AlertStatus",
        "ViolationStatusEnum": "monitoring.models.ViolationStatus",
    },
}

# --- Celery ------------------------------------------------------------------
# Every value here is chosen against a known way Celery on Redis loses or
# duplicates work; docs/jobs.md ("What protects a job", "Configuration doctor") explains each one.
JOB_QUEUES = ["default", "invoices", "email", "exports", "maintenance"]
JOB_DEFAULT_SOFT_TIME_LIMIT = env_int("JOB_DEFAULT_SOFT_TIME_LIMIT", 300)
JOB_DEFAULT_TIME_LIMIT = env_int("JOB_DEFAULT_TIME_LIMIT", 360)
# The longest countdown a message may carry in the broker; longer delays wait
# in the job row and the sweeper publishes them when due.
JOB_MAX_BROKER_COUNTDOWN = env_int("JOB_MAX_BROKER_COUNTDOWN", 600)
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", 7200)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = "django-db"
CELERY_CACHE_BACKEND = "django-cache"
CELERY_RESULT_EXTENDED = True
# Task results are kept as long as their jobs (JOB_RETENTION_*_DAYS) and deleted by jobs.prune;
# Celery's own expiry (1 day by default) would make beat's celery.backend_cleanup delete result
# rows that job pages still link to. None also keeps beat from installing that cleanup.
CELERY_RESULT_EXPIRES = None
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_EVENT_SERIALIZER = "json"
# Off: a tracked job's message carries only its id; gzip cost CPU on every message
# for nothing (docs/benchmarks.md, "Jobs").
CELERY_TASK_COMPRESSION = env_str("CELERY_TASK_COMPRESSION", "") or None
CELERY_TIMEZONE = TIME_ZONE
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Recycling forks a fresh Django process that must reconnect; the memory limit
# below is what guards against leaks, so recycle rarely (docs/benchmarks.md).
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 100_000)
# Seconds a new pool process may take to start; its start includes compiling the
# EN 16931 stylesheets (~0.7 s, more on a loaded machine; Celery's default is 4).
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", 20.0)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 512_000)  # KiB
CELERY_TASK_SOFT_TIME_LIMIT = JOB_DEFAULT_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = JOB_DEFAULT_TIME_LIMIT
# Task events (for Flower / `celery events`): nothing in the app reads them, and
# they cost ~0.5 ms of worker CPU per task; `celery control enable_events` turns
# them on at run time when someone watches.
CELERY_TASK_EVENTS = env_bool("CELERY_TASK_EVENTS", False)
CELERY_TASK_SEND_SENT_EVENT = CELERY_TASK_EVENTS
CELERY_WORKER_SEND_TASK_EVENTS = CELERY_TASK_EVENTS
CELERY_TASK_TRACK_STARTED = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    "priority_steps": list(range(10)),
    "sep": ":",
    "queue_order_strategy": "priority",
    # a frozen Redis must not hang a web request that publishes a job
    "socket_timeout": env_float("CELERY_BROKER_SOCKET_TIMEOUT", 5.0),
    "socket_connect_timeout": env_float("CELERY_BROKER_CONNECT_TIMEOUT", 2.0),
    "max_retries": 2,
}
CELERY_BROKER_POOL_LIMIT = 10
# kombu's Redis transport, keeping one Redis client per channel instead of building one
# per publish and per ack (config/broker.py; docs/benchmarks.md, "Jobs"). "redis" is kombu's own.
_REDIS_BROKER = urlsplit(CELERY_BROKER_URL).scheme in ("redis", "rediss")
CELERY_BROKER_TRANSPORT = env_str("CELERY_BROKER_TRANSPORT", "config.broker:Transport" if _REDIS_BROKER else "") or None
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_TASK_QUEUE_MAX_PRIORITY = 9
CELERY_TASK_QUEUES = [Queue(name, routing_key=name) for name in JOB_QUEUES]
# One source for queues: each job kind's `queue` (plain tasks: their own `queue`).
CELERY_TASK_ROUTES = ("jobs.routing.route_task",)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Celery's Django fixup closes the DB connection around every task unless this
# raw key is set; reusing it doubles throughput (docs/benchmarks.md).
# Copied onto the Celery app as the raw key its Django fixup reads (config/celery.py):
# reusing connections doubles task throughput (docs/benchmarks.md).
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- Jobs --------------------------------------------------------------------
JOB_HEARTBEAT_SECONDS = env_int("JOB_HEARTBEAT_SECONDS", 10)
JOB_STALE_AFTER_SECONDS = env_int("JOB_STALE_AFTER_SECONDS", 45)
JOB_PROGRESS_WRITE_INTERVAL = env_float("JOB_PROGRESS_WRITE_INTERVAL", 1.0)
JOB_QUEUED_REPUBLISH_AFTER_SECONDS = env_int("JOB_QUEUED_REPUBLISH_AFTER_SECONDS", 60)
# A job whose worker died under it runs again (whatever its max_attempts) until it
# has lost this many runs: then it is a dead letter ("killed its worker N times").
JOB_MAX_LOST_RUNS = env_int("JOB_MAX_LOST_RUNS", 3)
# A job started by hand may be delayed (run_at / countdown) at most this long, and
# run_at may lie this many seconds in the past (clock skew between client and server).
JOB_MAX_START_DELAY_DAYS = env_int("JOB_MAX_START_DELAY_DAYS", 90)
JOB_START_SKEW_SECONDS = env_int("JOB_START_SKEW_SECONDS", 60)
# A worker probes its database this often; while it does not answer, the worker
# stops consuming and reports itself unhealthy (jobs/worker_health.py).
WORKER_DB_CHECK_SECONDS = env_float("WORKER_DB_CHECK_SECONDS", 5.0)
# After a failed publish, a process leaves jobs to the sweeper for this long
# instead of waiting on the broker again in every request.
JOB_PUBLISH_RETRY_AFTER_SECONDS = env_float("JOB_PUBLISH_RETRY_AFTER_SECONDS", 10.0)
JOB_RETENTION_SUCCEEDED_DAYS = env_int("JOB_RETENTION_SUCCEEDED_DAYS", 14)
JOB_RETENTION_FAILED_DAYS = env_int("JOB_RETENTION_FAILED_DAYS", 90)
JOB_RETENTION_BATCH_SIZE = env_int("JOB_RETENTION_BATCH_SIZE", 5000)
# Extra modules that declare job kinds (the test suite's diagnostic kinds, plugins).
JOB_EXTRA_MODULES = env_list("JOB_EXTRA_MODULES", [])

# --- Invoices and email -------------------------------------------------------
INVOICE_INBOX_DIR = Path(env_str("INVOICE_INBOX_DIR", str(VAR_DIR / "inbox")))
INVOICE_MAX_FILE_BYTES = env_int("INVOICE_MAX_FILE_BYTES", 20 * 1024 * 1024)
# The review queue marks invoices whose payment is due within this many days (or overdue).
REVIEW_DUE_SOON_DAYS = env_int("REVIEW_DUE_SOON_DAYS", 5)
# One multipart request (several files) may carry at most this; over it the API answers 413 unread.
INVOICE_UPLOAD_MAX_REQUEST_BYTES = env_int("INVOICE_UPLOAD_MAX_REQUEST_BYTES", 5 * INVOICE_MAX_FILE_BYTES)
# OCR of scans and photos (OCRmyPDF + Tesseract, optional system packages; docs/formats.md).
OCR_ENABLED = env_bool("OCR_ENABLED", True)
OCR_LANGUAGES = env_str("OCR_LANGUAGES", "eng+deu+fra")
OCR_MAX_PAGES = env_int("OCR_MAX_PAGES", 10)
OCR_PAGE_TIMEOUT = env_int("OCR_PAGE_TIMEOUT", 60)
OCR_COMMAND = env_str("OCR_COMMAND", "ocrmypdf")
EMAILSYNC_ALLOW_PRIVATE_HOSTS = env_bool("EMAILSYNC_ALLOW_PRIVATE_HOSTS", False)
EMAILSYNC_ALLOW_INSECURE = env_bool("EMAILSYNC_ALLOW_INSECURE", False)
EMAILSYNC_CA_FILE = env_str("EMAILSYNC_CA_FILE")
EMAILSYNC_TIMEOUT = env_float("EMAILSYNC_TIMEOUT", 30.0)
EMAILSYNC_HEADER_BATCH = env_int("EMAILSYNC_HEADER_BATCH", 500)
EMAILSYNC_DOWNLOAD_BATCH = env_int("EMAILSYNC_DOWNLOAD_BATCH", 20)
EMAILSYNC_MAX_MESSAGE_ATTEMPTS = env_int("EMAILSYNC_MAX_MESSAGE_ATTEMPTS", 3)
EMAILSYNC_ZIP_MAX_MEMBERS = env_int("EMAILSYNC_ZIP_MAX_MEMBERS", 50)
EMAILSYNC_ZIP_MAX_TOTAL_BYTES = env_int("EMAILSYNC_ZIP_MAX_TOTAL_BYTES", 50 * 1024 * 1024)
EMAILSYNC_ZIP_MAX_RATIO = env_float("EMAILSYNC_ZIP_MAX_RATIO", 100.0)
# Per message: its raw size (larger ones are not downloaded) and what all its zips may expand to together.
EMAILSYNC_MESSAGE_MAX_BYTES = env_int("EMAILSYNC_MESSAGE_MAX_BYTES", 50 * 1024 * 1024)
EMAILSYNC_MESSAGE_MAX_EXPANDED_BYTES = env_int("EMAILSYNC_MESSAGE_MAX_EXPANDED_BYTES", 100 * 1024 * 1024)
EMAILSYNC_SYNC_INTERVAL_SECONDS = env_int("EMAILSYNC_SYNC_INTERVAL_SECONDS", 300)
# OAuth connect (authorization code + PKCE) and token refresh for Gmail and Microsoft 365 mailboxes.
# The endpoints are overridable so tests (and sovereign clouds) can point elsewhere. The older
# EMAILSYNC_GOOGLE_* / EMAILSYNC_MICROSOFT_* names are still read as fallbacks.
OAUTH_REDIRECT_URI = env_str("OAUTH_REDIRECT_URI")  # empty: built from the request
OAUTH_STATE_TTL_SECONDS = env_int("OAUTH_STATE_TTL_SECONDS", 600)
OAUTH_GOOGLE_CLIENT_ID = env_str("OAUTH_GOOGLE_CLIENT_ID", env_str("EMAILSYNC_GOOGLE_CLIENT_ID"))
OAUTH_GOOGLE_CLIENT_SECRET = env_str("OAUTH_GOOGLE_CLIENT_SECRET", env_str("EMAILSYNC_GOOGLE_CLIENT_SECRET"))
OAUTH_GOOGLE_AUTHORIZE_URL = env_str("OAUTH_GOOGLE_AUTHORIZE_URL", "https://accounts.google.com/o/oauth2/v2/auth")
OAUTH_GOOGLE_TOKEN_URL = env_str(
    "OAUTH_GOOGLE_TOKEN_URL", env_str("EMAILSYNC_GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")
)
OAUTH_GOOGLE_USERINFO_URL = env_str("OAUTH_GOOGLE_USERINFO_URL", "https://openidconnect.googleapis.com/v1/userinfo")
OAUTH_GOOGLE_SCOPES = env_str("OAUTH_GOOGLE_SCOPES", "openid email https://mail.google.com/")
OAUTH_GOOGLE_IMAP_HOST = env_str("OAUTH_GOOGLE_IMAP_HOST", "imap.gmail.com")
OAUTH_GOOGLE_IMAP_PORT = env_int("OAUTH_GOOGLE_IMAP_PORT", 993)
OAUTH_MICROSOFT_TENANT = env_str("OAUTH_MICROSOFT_TENANT", "common")
OAUTH_MICROSOFT_CLIENT_ID = env_str("OAUTH_MICROSOFT_CLIENT_ID", env_str("EMAILSYNC_MICROSOFT_CLIENT_ID"))
OAUTH_MICROSOFT_CLIENT_SECRET = env_str("OAUTH_MICROSOFT_CLIENT_SECRET", env_str("EMAILSYNC_MICROSOFT_CLIENT_SECRET"))
OAUTH_MICROSOFT_AUTHORIZE_URL = env_str(
    "OAUTH_MICROSOFT_AUTHORIZE_URL", f"https://login.microsoftonline.com/{OAUTH_MICROSOFT_TENANT}/oauth2/v2.0/authorize"
)
OAUTH_MICROSOFT_TOKEN_URL = env_str(
    "OAUTH_MICROSOFT_TOKEN_URL",
    env_str(
        "EMAILSYNC_MICROSOFT_TOKEN_URL", f"https://login.microsoftonline.com/{OAUTH_MICROSOFT_TENANT}/oauth2/v2.0/token"
    ),
)
OAUTH_MICROSOFT_USERINFO_URL = env_str("OAUTH_MICROSOFT_USERINFO_URL")  # empty: the id token names the user
OAUTH_MICROSOFT_SCOPES = env_str(
    "OAUTH_MICROSOFT_SCOPES", "openid email https://outlook.office.com/IMAP.AccessAsUser.All offline_access"
)
OAUTH_MICROSOFT_IMAP_HOST = env_str("OAUTH_MICROSOFT_IMAP_HOST", "outlook.office365.com")
OAUTH_MICROSOFT_IMAP_PORT = env_int("OAUTH_MICROSOFT_IMAP_PORT", 993)
EMAILSYNC_OAUTH_PROVIDERS = {
    "google": {
        "client_id": OAUTH_GOOGLE_CLIENT_ID,
        "client_secret": OAUTH_GOOGLE_CLIENT_SECRET,
        "authorize_url": OAUTH_GOOGLE_AUTHORIZE_URL,
        "token_url": OAUTH_GOOGLE_TOKEN_URL,
        "userinfo_url": OAUTH_GOOGLE_USERINFO_URL,
        "scope": OAUTH_GOOGLE_SCOPES,
        "imap_host": OAUTH_GOOGLE_IMAP_HOST,
        "imap_port": OAUTH_GOOGLE_IMAP_PORT,
        # Google returns a refresh token only with offline access, and again only on consent.
        "authorize_params": {"access_type": "offline", "prompt": "consent"},
    },
    "microsoft": {
        "client_id": OAUTH_MICROSOFT_CLIENT_ID,
        "client_secret": OAUTH_MICROSOFT_CLIENT_SECRET,
        "authorize_url": OAUTH_MICROSOFT_AUTHORIZE_URL,
        "token_url": OAUTH_MICROSOFT_TOKEN_URL,
        "userinfo_url": OAUTH_MICROSOFT_USERINFO_URL,
        "scope": OAUTH_MICROSOFT_SCOPES,
        "imap_host": OAUTH_MICROSOFT_IMAP_HOST,
        "imap_port": OAUTH_MICROSOFT_IMAP_PORT,
        "authorize_params": {"prompt": "select_account"},
    },
}

# --- Logging -------------------------------------------------------------------
LOG_FORMAT = env_str("LOG_FORMAT", "text")  # "text" or "json"
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"task_context": {"()": "config.logging.TaskContextFilter"}},
    "formatters": {
        "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(task_name)s %(task_id)s] %(message)s"},
        "json": {"()": "config.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["task_context"],
            "formatter": "json" if LOG_FORMAT == "json" else "text",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": env_str("CELERY_LOG_LEVEL", "INFO")},
        # Celery's line per task received and per task succeeded; the Job row and its
        # execution record say the same. Failures are logged at ERROR either way.
        "celery.worker.strategy": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
        "celery.app.trace": {"level": env_str("CELERY_TASK_LOG_LEVEL", "WARNING")},
    },
}

# --- Monitoring --------------------------------------------------------------------
# Health checks, metrics, alerts and compliance scans (docs/monitoring.md).
# /metrics answers a request carrying `Authorization: Bearer <METRICS_TOKEN>`;
# without a token configured, only logged-in staff may read it.
METRICS_TOKEN = env_str("METRICS_TOKEN")
MONITORING_WORKER_PING_TIMEOUT = env_float("MONITORING_WORKER_PING_TIMEOUT", 1.0)
MONITORING_WORKER_CACHE_SECONDS = env_int("MONITORING_WORKER_CACHE_SECONDS", 10)
MONITORING_BEAT_HEARTBEAT_SECONDS = env_int("MONITORING_BEAT_HEARTBEAT_SECONDS", 30)
MONITORING_DISK_MIN_FREE_MB = env_int("MONITORING_DISK_MIN_FREE_MB", 1024)
MONITORING_WEBHOOK_SECRET = env_str("MONITORING_WEBHOOK_SECRET")
MONITORING_WEBHOOK_TIMEOUT = env_float("MONITORING_WEBHOOK_TIMEOUT", 5.0)
MONITORING_WEBHOOK_RETRIES = env_int("MONITORING_WEBHOOK_RETRIES", 3)
MONITORING_WEBHOOK_BACKOFF = env_float("MONITORING_WEBHOOK_BACKOFF", 1.0)
# Alert webhooks to loopback, private or link-local hosts are refused (SSRF) unless this is on (tests, dev).
MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS = env_bool("MONITORING_WEBHOOK_ALLOW_PRIVATE_HOSTS", False)

# --- Business events (events app): webhooks and the review digest --------------------------
EVENTS_WEBHOOK_TIMEOUT = env_float("EVENTS_WEBHOOK_TIMEOUT", 10.0)
EVENTS_WEBHOOK_MAX_ATTEMPTS = env_int("EVENTS_WEBHOOK_MAX_ATTEMPTS", 6)
EVENTS_WEBHOOK_BACKOFF = env_float("EVENTS_WEBHOOK_BACKOFF", 30.0)
# 1 allows webhook URLs on private or loopback addresses (tests, an ERP on the LAN).
EVENTS_ALLOW_PRIVATE_HOSTS = env_bool("EVENTS_ALLOW_PRIVATE_HOSTS", False)
# Absolute URL of the site, for links in the review digest (e.g. https://ap.example.com).
EVENTS_SITE_URL = env_str("EVENTS_SITE_URL")
MONITORING_METRICS_SETTLE_SECONDS = env_int("MONITORING_METRICS_SETTLE_SECONDS", 5)
MONITORING_SCHEDULE_LATE_SECONDS = env_int("MONITORING_SCHEDULE_LATE_SECONDS", 60)
MONITORING_HISTORY_DAYS = env_int("MONITORING_HISTORY_DAYS", 30)
MONITORING_BACKUP_DIR = Path(env_str("MONITORING_BACKUP_DIR", str(VAR_DIR / "backups")))
MONITORING_BACKUP_KEEP = env_int("MONITORING_BACKUP_KEEP", 14)
MONITORING_DASHBOARD_REFRESH_SECONDS = env_int("MONITORING_DASHBOARD_REFRESH_SECONDS", 3)
