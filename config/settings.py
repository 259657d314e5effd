"""Tastebase settings: one file, read from the environment (see README's table).

With nothing set, Tastebase runs on the embedded default: a SQLite file in the
project, a local-memory cache and Celery tasks run eagerly in-process. Tests
run on ``config.test_settings``, which imports this file and overrides a few
values.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from recommender.engine.registry import ALGORITHM_PATHS, parse_params

from .env import envbool, envchoice, envcron, envfloat, envint, envlist, envrate, envurl

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if DEBUG:
        # Development-only key; never used with DEBUG off (tests set their own).
        SECRET_KEY = "insecure-development-key-do-not-use-in-production"
    else:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY in the environment, or DEBUG=1 for local development."
        )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if not DEBUG else ["*"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "axes",
    "django_htmx",
    "catalog",
    "ratings",
    "recommender",
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
    "django_htmx.middleware.HtmxMiddleware",
    # Last: turns a sign-in that django-axes refused into the lockout page (or API error).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# ---- database ----------------------------------------------------------------
DEFAULT_DATABASE_URL = f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
_database_url = envurl(
    "DATABASE_URL", DEFAULT_DATABASE_URL, schemes=("sqlite", "postgres", "postgresql", "pgsql")
)
try:
    DATABASES = {
        "default": dj_database_url.parse(
            _database_url,
            conn_max_age=envint("CONN_MAX_AGE", 60),
            # A persistent connection the server dropped is replaced, not handed to a request.
            conn_health_checks=True,
        )
    }
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL={_database_url!r} could not be parsed: {exc}") from None
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while an import or training writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# ---- cache and Celery --------------------------------------------------------
REDIS_URL = envurl("REDIS_URL", "", schemes=("redis", "rediss", "unix"))
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", "tastebase"),
            # Fail fast when Redis is down or unreachable instead of holding a request.
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The cache only saves work: when Redis fails, django-redis answers a miss (reads)
# or does nothing (writes) and logs the error to this logger, whose handler
# counts it (config.cache_health.cache_errors_total) for the health endpoint.
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "tastebase.cache"

CELERY_BROKER_URL = envurl("CELERY_BROKER_URL", REDIS_URL, schemes=("redis", "rediss", "amqp", "memory"))
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", REDIS_URL or "cache+memory://")
# No broker configured = the embedded default: tasks run eagerly in-process.
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", not CELERY_BROKER_URL)
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 4 * 3600, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 4 * 3600 - 60, minimum=1)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# A worker or beat started before the broker waits for it (compose starts them
# together); `retrain --async` does not wait (see that command).
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"

# ---- auth, i18n, static ------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "catalog:item_list"
LOGOUT_REDIRECT_URL = "catalog:item_list"

# Sign-in attempts are limited by django-axes, for the site, the admin and the API's
# token sign-in alike: after AXES_FAILURE_LIMIT failures for one username from one IP
# address, that pair is refused for AXES_COOLOFF_MINUTES (each further failure restarts
# the wait). Locking the pair, not the username, means nobody can lock a person out
# from everywhere by failing on purpose. Staff unlock people in the admin (Axes).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out pair before any check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = envbool("AXES_ENABLED", True)
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "catalog.accounts.lockout_response"
#: Reverse proxies in front of the site (0 = none): with N, the client's address is the
#: N-th from the right in X-Forwarded-For, the one the outermost trusted proxy saw.
TASTEBASE_PROXY_COUNT = envint("TASTEBASE_PROXY_COUNT", 0, minimum=0)
AXES_CLIENT_IP_CALLABLE = "catalog.accounts.client_ip_address"

# Mail (password resets). Console by default: the message is printed by the server.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are both on; set at most one of them")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "Tastebase <noreply@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# In development serve straight from the app folders (no collectstatic).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# ---- security (on when DEBUG is off) -----------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)

# ---- REST API ----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Token for apps and scripts, session for the site's own pages (with CSRF).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_PAGINATION_CLASS": "config.api.Pagination",
    "PAGE_SIZE": 25,
    "EXCEPTION_HANDLER": "config.api.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "config.throttling.AnonRateThrottle",
        "config.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": envrate("TASTEBASE_API_ANON_RATE", "120/minute"),
        "user": envrate("TASTEBASE_API_USER_RATE", "600/minute"),
        "login": envrate("TASTEBASE_API_LOGIN_RATE", "10/minute"),
    },
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tastebase API",
    "DESCRIPTION": "Browse the catalog, rate what you know, get recommendations. "
    'Errors always have the shape {"error": {"code", "message", "fields"}}.',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI and Redoc from drf-spectacular-sidecar: served by us, no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.add_error_responses",
    ],
}

# ---- Tastebase ---------------------------------------------------------------
TASTEBASE_DATA_DIR = Path(os.environ.get("TASTEBASE_DATA_DIR", Path.home() / ".cache" / "tastebase"))
TASTEBASE_DEMO_USERNAME = os.environ.get("TASTEBASE_DEMO_USERNAME", "demo")
TASTEBASE_POPULARITY_DAMPING = envfloat("TASTEBASE_POPULARITY_DAMPING", 10.0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        "cache_errors": {"class": "config.cache_health.CacheErrorCounter"},
    },
    # Its own level, so the count does not depend on LOG_LEVEL; records still reach the console.
    "loggers": {DJANGO_REDIS_LOGGER: {"handlers": ["cache_errors"], "level": "ERROR"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}


# ---- training and serving ------------------------------------------------------
#: The model trained for each kind when ``retrain`` gets no --algorithm.
#: Names are checked against the engine's registry here; whether each model can
#: serve its kind is a system check (recommender/checks.py).
def _params(name: str, default: list[str]) -> dict[str, str]:
    """``key=value`` pairs, comma-separated, from the environment (checked when a run builds its model)."""
    try:
        return parse_params(envlist(name, default))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}: {exc}") from None


#: Rating: the Bayesian SVD++ served form, the most accurate servable model under the
#: validation protocol (docs/benchmarks.md, ML-100K: holdout RMSE 0.888 at 80/20, 0.881
#: over 5 folds, against explicit_als's 0.914/0.906).
TASTEBASE_DEFAULT_ALGORITHMS = {
    "rating": envchoice("TASTEBASE_RATING_ALGORITHM", "bayesian_svdpp_served", choices=ALGORITHM_PATHS),
    "ranking": envchoice("TASTEBASE_RANKING_ALGORITHM", "implicit_als", choices=ALGORITHM_PATHS),
    "similarity": envchoice("TASTEBASE_SIMILARITY_ALGORITHM", "item_knn", choices=ALGORITHM_PATHS),
}
#: Hyperparameters each kind's default algorithm trains with; a run's own params
#: (``retrain --param``, the API, the dashboard) override them key by key. Similarity:
#: chosen on validation splits by ``python -m bench.bench_similar`` (docs/benchmarks.md,
#: "Similar items: offline quality"); the others' defaults live in the estimators.
TASTEBASE_DEFAULT_PARAMS: dict[str, dict[str, str]] = {
    "rating": _params("TASTEBASE_RATING_PARAMS", []),
    "ranking": _params("TASTEBASE_RANKING_PARAMS", []),
    "similarity": _params(
        "TASTEBASE_SIMILARITY_PARAMS", ["similarity=jaccard", "shrinkage=250", "min_support=1"]
    ),
}
#: Above this many ratings a run that uses its kind's default trains the kind's
#: large-catalog algorithm instead, if one is set: the Gibbs sampler behind the rating
#: default does ~200 sweeps over every rating (about 30 s at 100K, 15+ minutes at 20M),
#: where explicit_als's conjugate-gradient ALS stays at a few minutes (docs/scaling.md).
#: TASTEBASE_RATING_ALGORITHM_LARGE=none keeps the default at every size.
TASTEBASE_LARGE_CATALOG_RATINGS = envint("TASTEBASE_LARGE_CATALOG_RATINGS", 2_000_000, minimum=0)
TASTEBASE_LARGE_CATALOG_ALGORITHMS = {
    kind: name
    for kind, name in {
        "rating": envchoice(
            "TASTEBASE_RATING_ALGORITHM_LARGE", "explicit_als", choices=(*ALGORITHM_PATHS, "none")
        ),
        "ranking": envchoice("TASTEBASE_RANKING_ALGORITHM_LARGE", "none", choices=(*ALGORITHM_PATHS, "none")),
        "similarity": envchoice(
            "TASTEBASE_SIMILARITY_ALGORITHM_LARGE", "none", choices=(*ALGORITHM_PATHS, "none")
        ),
    }.items()
    if name != "none"
}
TASTEBASE_TRAINING_LOCK_TTL = envint("TASTEBASE_TRAINING_LOCK_TTL", 120, minimum=1)
TASTEBASE_KEEP_VERSIONS = envint("TASTEBASE_KEEP_VERSIONS", 3, minimum=1)
#: Promotion gate: a new version may be worse than the active one by at most this
#: much on its kind's holdout metric (RMSE for rating, NDCG@10 otherwise).
TASTEBASE_PROMOTION_MARGIN = envfloat("TASTEBASE_PROMOTION_MARGIN", 0.01)
TASTEBASE_HOLDOUT_FRACTION = envfloat("TASTEBASE_HOLDOUT_FRACTION", 0.1)
TASTEBASE_REFIT_ON_ALL = envbool("TASTEBASE_REFIT_ON_ALL", True)
#: Ranking metrics are computed on a seeded sample of at most this many test users.
TASTEBASE_EVAL_MAX_USERS = envint("TASTEBASE_EVAL_MAX_USERS", 5000, minimum=1)
TASTEBASE_NEIGHBORS = envint("TASTEBASE_NEIGHBORS", 30, minimum=1)
TASTEBASE_RETRAIN_CRON = envcron("TASTEBASE_RETRAIN_CRON", "30 3 * * *")
TASTEBASE_SIMILARITY_CRON = envcron("TASTEBASE_SIMILARITY_CRON", "15 * * * *")
#: Where factor models train: ``local`` (the engine, in the worker) or ``spark``
#: (explicit_als/implicit_als train as their Spark twins spark_als/spark_implicit_als
#: on SPARK_MASTER; needs requirements-spark.txt and Java 17). Serving never needs Spark.
TASTEBASE_TRAINING_BACKEND = envchoice("TASTEBASE_TRAINING_BACKEND", "local", choices=("local", "spark"))
#: The Spark master a Spark fit connects to: local[N] (in-process) or spark://host:7077.
SPARK_MASTER = os.environ.get("SPARK_MASTER", "").strip() or "local[*]"
#: A directory every Spark executor can read, for the ratings export and checkpoints
#: (a shared volume on a real cluster); empty: the system temp dir (fine for local[N]).
TASTEBASE_SPARK_SHARED_DIR = os.environ.get("TASTEBASE_SPARK_SHARED_DIR", "").strip()

# ---- ratings import ------------------------------------------------------------
#: Rows one CSV import on My ratings may carry; the file may hold 200 bytes a row on
#: average (ratings.csv_io.IMPORT_BYTES_PER_ROW), so 10,000 rows -> 2 MB.
TASTEBASE_RATINGS_IMPORT_MAX_ROWS = envint("TASTEBASE_RATINGS_IMPORT_MAX_ROWS", 10_000, minimum=1)
