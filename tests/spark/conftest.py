"""Spark tests need pyspark (requirements-spark.txt) and a Java runtime: without
them they skip, saying which is missing. CI installs both (``.ci/run``).

One ``local[2]`` session serves the whole test session: starting the JVM takes
10-20 s, a fit on it a few seconds. A test module that needs no Spark (it
checks the engine *without* pyspark, or pure-numpy math) sets ``NEEDS_SPARK = False``.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

#: The master every Spark test runs on: two local cores, like CI's machines.
TEST_MASTER = "local[2]"


def spark_missing() -> str | None:
    """Why Spark cannot run here, or None."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed: Spark training is an optional extra (pip install -r requirements-spark.txt); CI installs it"
    if shutil.which("java") is None:
        return "no Java runtime on PATH: Spark needs Java 17 (apt-get install openjdk-17-jre-headless); CI installs it"
    return None


@pytest.fixture(autouse=True)
def _skip_without_spark(request: pytest.FixtureRequest) -> None:
    if getattr(request.module, "NEEDS_SPARK", True) and (reason := spark_missing()):
        pytest.skip(reason)


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The process's Spark session on ``local[2]`` (the site's own builder, so the
    pipeline tests reuse it when ``SPARK_MASTER`` is ``local[2]``)."""
    if reason := spark_missing():
        pytest.skip(reason)
    from recommender.spark import spark_session

    session = spark_session(master=TEST_MASTER)
    yield session
    session.stop()  # before the interpreter exits, so py4j closes its connections quietly
