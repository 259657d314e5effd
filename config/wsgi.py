"""WSGI entry point (gunicorn config.wsgi)."""

from __future__ import annotations

import logging
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Load the live models and their fold-in kernels now, not on a visitor's first page or rating.
if os.environ.get("TASTEBASE_WARM_UP", "1") == "1":
    from recommender.serving import serving_warm_up

    logging.getLogger("recommender").info("warmed up: %s", ", ".join(serving_warm_up()) or "nothing live")
