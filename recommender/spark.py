"""The Spark training backend: which algorithms train on Spark, and on which session.

With ``TASTEBASE_TRAINING_BACKEND=spark`` (or ``retrain --backend spark``) the
factor models with a Spark twin train as that twin (``explicit_als`` ->
``spark_als``, ``implicit_als`` -> ``spark_implicit_als``, see
:mod:`recommender.engine.spark_als`); the others (the similarity kind's
neighbour models) train in the worker as before. Everything after the fit
(judging, persisting the factor tables, the promotion gate, activation,
serving, fold-in) is the pipeline every version goes through: the site does
not care where a version was trained, and only the version's algorithm name
records it.

The session is built on first use (starting the JVM takes 10-20 s), from
``SPARK_MASTER``, and kept for the life of the process so the next run
(a Celery worker trains many) reuses it. pyspark is imported only here, inside
functions, and only when a Spark model actually fits.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from django.conf import settings

from recommender.engine.spark_als import SparkRuntime, spark_runtime

logger = logging.getLogger(__name__)

BACKENDS = ("local", "spark")
#: Local algorithm -> the Spark-trained twin that replaces it on the spark backend.
SPARK_TWINS = {"explicit_als": "spark_als", "implicit_als": "spark_implicit_als"}

_lock = threading.Lock()
_session: Any = None


def backend_algorithm(algorithm: str, *, backend: str | None = None) -> str:
    """The algorithm a run of ``algorithm`` trains on ``backend`` (default: the setting)."""
    backend = backend or settings.TASTEBASE_TRAINING_BACKEND
    if backend not in BACKENDS:
        raise ValueError(f"unknown training backend {backend!r}; valid: {', '.join(BACKENDS)}")
    return SPARK_TWINS.get(algorithm, algorithm) if backend == "spark" else algorithm


def spark_session(*, master: str | None = None) -> Any:
    """This process's ``SparkSession`` on ``master`` (default ``SPARK_MASTER``).

    Built on the first call and reused after. Spark allows one context per
    process, so asking for another master stops the current session first.
    A master that cannot be reached raises here, inside the run that asked.
    """
    global _session
    from pyspark.sql import SparkSession

    master = master or settings.SPARK_MASTER
    with _lock:
        if _session is not None:
            context = _session.sparkContext
            if getattr(context, "_jsc", None) is not None and context.master == master:
                return _session
            _session.stop()
            _session = None
        builder = (
            SparkSession.builder.master(master)
            .appName("tastebase-training")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.ui.enabled", "false")
        )
        if master.startswith("local"):
            # Shuffles of a local[N] run need N partitions, not Spark's cluster default of 200.
            builder = builder.config("spark.sql.shuffle.partitions", "4")
        # py4j logs every connection it opens and closes at INFO: noise in a worker's log.
        logging.getLogger("py4j").setLevel(logging.WARNING)
        _session = builder.getOrCreate()
        _session.sparkContext.setLogLevel("WARN")
        logger.info("Spark session on %s (Spark %s)", master, _session.version)
        return _session


@contextlib.contextmanager
def spark_training() -> Iterator[SparkRuntime]:
    """Within the block, Spark models fit on :func:`spark_session` (built lazily
    at the first Spark fit, so a local run never starts a JVM) and export the
    ratings under ``TASTEBASE_SPARK_SHARED_DIR``."""
    with spark_runtime(spark_session, shared_dir=settings.TASTEBASE_SPARK_SHARED_DIR or None) as runtime:
        yield runtime
