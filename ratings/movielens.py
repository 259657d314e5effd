"""The importer's reader: MovieLens datasets on this app's rating scale (no database).

Parsing lives in :mod:`recommender.engine.readers`, the one ratings-file reader
that ``manage.py evaluate`` and the engine's dataset loaders use too; this module
binds the app's scale (:mod:`ratings.scale`) and keeps the importer's names.
See that module for the formats, the validation and the file:line messages.
"""

from __future__ import annotations

from pathlib import Path

from recommender.engine import readers
from recommender.engine.readers import (
    FORMAT_100K,
    FORMAT_CSV,
    FORMAT_DAT,
    FORMAT_RECBOLE,
    ML100K_GENRES,
    ItemTable,
    MovieLensDataset,
    RatingTable,
    ScoreScale,
    split_title_year,
)
from recommender.engine.readers import RatingsFileError as ImportFormatError

from .scale import MAX_SCORE, MIN_SCORE, SCORE_STEP

__all__ = [
    "FORMAT_100K",
    "FORMAT_CSV",
    "FORMAT_DAT",
    "FORMAT_RECBOLE",
    "ML100K_GENRES",
    "SCORE_SCALE",
    "ImportFormatError",
    "ItemTable",
    "MovieLensDataset",
    "RatingTable",
    "read_dataset",
    "split_title_year",
]

#: Ratings the app stores: a file with any other score is rejected, naming the line.
SCORE_SCALE = ScoreScale(MIN_SCORE, MAX_SCORE, SCORE_STEP)


def read_dataset(path: Path | str) -> MovieLensDataset:
    """Detect, parse and validate the MovieLens dataset in ``path`` (a folder or a .zip).

    Raises :class:`ImportFormatError` (the reader's ``RatingsFileError``) naming the
    file and line of the first problem.
    """
    return readers.read_dataset(path, scale=SCORE_SCALE)
