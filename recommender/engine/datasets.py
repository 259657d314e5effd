"""Benchmark datasets read from local files (the engine downloads nothing).

``ratings.demo_data.fetch_ml100k()`` puts RecBole's ML-100K files in a folder;
:func:`load_ml100k_arrays` reads them from there through the project's one
ratings-file reader (:mod:`recommender.engine.readers`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from .readers import read_ratings_file

#: RecBole's ML-100K interactions file: ``user_id``, ``item_id``, ``rating``, ``timestamp``.
ML100K_RATINGS_FILE = "ml-100k.inter"


def load_ml100k_arrays(
    folder: Path | str,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float32], NDArray[np.int64]]:
    """(user_ids, item_ids, ratings, timestamps) of ML-100K in file order.

    ``folder`` holds ``ml-100k.inter`` (see ``ratings.demo_data.fetch_ml100k``).
    """
    table = read_ratings_file(Path(folder) / ML100K_RATINGS_FILE)
    return table.user_ids, table.item_ids, table.scores.astype(np.float32), table.timestamps
