"""Settings for the test suite: the real settings plus what only tests want.

``pyproject.toml`` points pytest here. Subprocesses the tests start (Celery
workers, ``manage.py``) use ``config.settings`` with their own environment.
"""

from __future__ import annotations

import os

# The real settings refuse to start without a key unless DEBUG is on; tests run
# with DEBUG off, as production does. Child processes inherit the same key.
os.environ.setdefault("SECRET_KEY", "insecure-test-key-do-not-use-in-production")

from .settings import *  # noqa: F403
from .settings import STORAGES

# Hashing a password is the slowest step of creating a user; tests create many.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Serve static files from the app folders: no collectstatic, no manifest.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# The API's throttles stay on, but far above what a test sends; the throttle test
# lowers them itself. (DRF reads the rates when its throttle classes are imported.)
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    "DEFAULT_THROTTLE_RATES": {"anon": "100000/minute", "user": "100000/minute", "login": "100000/minute"},
}

# django-axes refuses authenticate() calls without a request, and the test client's
# login() makes exactly those; tests of sign-in limits turn it on themselves
# (tests/accounts), everything else signs in unhindered.
AXES_ENABLED = False

# Password-reset mail lands in django.core.mail.outbox.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
