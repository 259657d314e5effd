"""The rating scale: half stars from 0.5 to 5.0.

No Django here, so the model constraints, the services, the forms and the
importer's reader (``ratings.movielens``) all share these numbers.
"""

from __future__ import annotations

MIN_SCORE = 0.5
MAX_SCORE = 5.0
SCORE_STEP = 0.5
