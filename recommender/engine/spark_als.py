"""Matrix factorization trained by Apache Spark MLlib's ALS, served like any factor model.

Spark is an optional extra (``requirements-spark.txt``, plus a Java 17 runtime):
only :meth:`fit` needs it. Importing this module, building a model, exporting
its tables and folding users in are pure numpy, so the web processes serve a
Spark-trained version without pyspark or a JVM. ``pyspark`` is imported inside
the functions that run Spark, never at module level.

What Spark minimizes (``org.apache.spark.ml.recommendation.ALS``, checked
against pyspark 4.1: a training user's vector equals the direct solve below to
float32 precision, and Spark solves the user side last in every iteration):

* explicit (``implicitPrefs=False``), ALS-WR (Zhou, Wilkinson, Schreiber &
  Pan, AAIM 2008), **no bias terms**, regularization scaled by the row's
  number of ratings::

      min sum_{(u,i)} (t_ui - x_u . y_i)^2 + lambda (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2)

  so with the items fixed ``x_u = (Y_u^T Y_u + lambda n_u I)^-1 Y_u^T t_u``.
* implicit (``implicitPrefs=True``), Hu, Koren & Volinsky (ICDM 2008) with
  Spark's confidence ``c_ui = 1 + alpha |t_ui|``, preference ``p_ui = [t_ui > 0]``
  and the same count scaling (``n_u`` = the row's positive entries)::

      min sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum_u n_u |x_u|^2 + sum_i n_i |y_i|^2)

  so ``x_u = (Y^T Y + sum_i alpha |t_ui| y_i y_i^T + lambda n_u I)^-1 sum_{t_ui > 0} c_ui y_i``.

The targets ``t_ui`` handed to Spark: :class:`SparkALS` gives it the residuals
of the regularized baseline ``r_ui - mu - b_u - c_i`` (``residuals="baseline"``,
the biases of :func:`.base.baseline_biases`, which Spark's bias-free model
cannot learn), ``r_ui - mu`` (``"mean"``) or the raw ratings (``"none"``, plain
Spark). :class:`SparkImplicitALS` gives it ``f(r) = r - r_min + 1`` (always
positive), so its confidence ``1 + alpha f(r)`` is :class:`.implicit_als.ImplicitALS`'s.

The session: Spark allows one ``SparkContext`` per process, so which cluster a
fit runs on is process state, set by whoever runs the fit with
:func:`spark_runtime` (the site's ``recommender/spark.py`` builds it from
``SPARK_MASTER``; tests and benchmarks start a ``local[2]`` one). The ratings
reach Spark as a Parquet file in ``shared_dir``, which every Spark executor
must be able to read (a shared volume on a real cluster); the factors come
back to the driver through Arrow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .base import Recommender, baseline_biases
from .interactions import Interactions
from .registry import MissingExtraError, missing_extra_message
from .tables import RANKING, RATING, FactorTables

__all__ = [
    "RESIDUALS",
    "SparkALS",
    "SparkImplicitALS",
    "SparkRuntime",
    "spark_explicit_row_reference",
    "spark_factorize",
    "spark_implicit_row_reference",
    "spark_runtime",
]

SPARK_EXTRA = ("pyspark", "requirements-spark.txt")
#: What :class:`SparkALS` subtracts from the ratings before Spark sees them.
RESIDUALS = ("baseline", "mean", "none")
#: Iterations between checkpoints of Spark's factor RDDs (its own default).
CHECKPOINT_INTERVAL = 10


@dataclass(frozen=True)
class SparkRuntime:
    """Where Spark fits run: a session factory (called on the first fit) and the
    directory, readable by every executor, that the ratings are exported to."""

    session: Callable[[], Any]
    shared_dir: str | None = None


_RUNTIME: ContextVar[SparkRuntime | None] = ContextVar("spark_runtime", default=None)


@contextlib.contextmanager
def spark_runtime(session: Callable[[], Any], *, shared_dir: str | None = None) -> Iterator[SparkRuntime]:
    """Within the block, Spark models fit on ``session()`` (called lazily, at
    each fit: a factory returning an existing session costs nothing)."""
    runtime = SparkRuntime(session=session, shared_dir=shared_dir)
    token = _RUNTIME.set(runtime)
    try:
        yield runtime
    finally:
        _RUNTIME.reset(token)


def _require_pyspark(what: str) -> None:
    if importlib.util.find_spec("pyspark") is None:
        raise MissingExtraError(missing_extra_message(what, *SPARK_EXTRA))


def _current_runtime(what: str) -> SparkRuntime:
    runtime = _RUNTIME.get()
    if runtime is None:
        raise RuntimeError(
            f"{what} trains on Spark but no Spark session is configured: fit inside "
            "recommender.engine.spark_als.spark_runtime(...) (the site does this from SPARK_MASTER)"
        )
    return runtime


def _factors_to_numpy(frame: Any, n_rows: int, rank: int) -> NDArray[np.float32]:
    """Spark's ``(id, features)`` factor frame -> dense ``n_rows x rank``; ids
    Spark never saw (no training ratings) get zero vectors."""
    out = np.zeros((n_rows, rank), dtype=np.float32)
    table = frame.select("id", "features").toArrow()
    if table.num_rows:
        ids = table.column("id").to_numpy()
        flat = table.column("features").combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[ids] = flat.reshape(-1, rank)
    return out


def spark_factorize(
    users: NDArray[np.integer[Any]],
    items: NDArray[np.integer[Any]],
    targets: NDArray[np.floating[Any]],
    *,
    n_users: int,
    n_items: int,
    rank: int,
    regularization: float,
    iterations: int,
    implicit: bool = False,
    alpha: float = 1.0,
    blocks: int = 0,
    seed: int = 0,
    runtime: SparkRuntime,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Fit ``pyspark.ml.recommendation.ALS`` on dense ``(user, item, target)``
    triples and return its ``(user factors, item factors)`` as float32 arrays.

    The triples are written as one Parquet file to a fresh directory under
    ``runtime.shared_dir`` (removed afterwards) and read by Spark from there.
    ``blocks=0`` uses Spark's default parallelism for both block counts.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyspark.ml.recommendation import ALS

    session = runtime.session()
    if runtime.shared_dir:
        Path(runtime.shared_dir).mkdir(parents=True, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="tastebase-spark-", dir=runtime.shared_dir)
    try:
        path = str(Path(workdir) / "ratings.parquet")
        pq.write_table(
            pa.table(
                {
                    "user": np.asarray(users, dtype=np.int32),
                    "item": np.asarray(items, dtype=np.int32),
                    "rating": np.asarray(targets, dtype=np.float32),
                }
            ),
            path,
        )
        # ALS's lineage grows with every iteration; without checkpoints a few
        # dozen iterations overflow the JVM stack when a task is deserialized.
        session.sparkContext.setCheckpointDir(str(Path(workdir) / "checkpoints"))
        frame = session.read.parquet(path)
        n_blocks = int(blocks) or max(1, int(session.sparkContext.defaultParallelism))
        als = ALS(
            rank=int(rank),
            maxIter=int(iterations),
            regParam=float(regularization),
            implicitPrefs=bool(implicit),
            alpha=float(alpha),
            numUserBlocks=n_blocks,
            numItemBlocks=n_blocks,
            seed=int(seed),
            userCol="user",
            itemCol="item",
            ratingCol="rating",
            nonnegative=False,
            checkpointInterval=CHECKPOINT_INTERVAL,
        )
        fitted = als.fit(frame)
        user_factors = _factors_to_numpy(fitted.userFactors, n_users, int(rank))
        item_factors = _factors_to_numpy(fitted.itemFactors, n_items, int(rank))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return user_factors, item_factors


def spark_explicit_row_reference(
    item_vectors: NDArray[np.floating[Any]], targets: ArrayLike, regularization: float
) -> NDArray[np.float64]:
    """Slow textbook solve of Spark's explicit row problem, float64:
    ``argmin_x |t - Y x|^2 + lambda n |x|^2 = (Y^T Y + lambda n I)^-1 Y^T t``
    for the ``n`` rated items' vectors ``Y`` (rows) and targets ``t``."""
    y = np.asarray(item_vectors, dtype=np.float64)
    t = np.asarray(targets, dtype=np.float64)
    k = y.shape[1]
    if t.size == 0:
        return np.zeros(k)
    return np.asarray(np.linalg.solve(y.T @ y + regularization * t.size * np.eye(k), y.T @ t))


def spark_implicit_row_reference(
    all_item_vectors: NDArray[np.floating[Any]],
    positions: NDArray[np.integer[Any]],
    targets: ArrayLike,
    regularization: float,
    alpha: float,
) -> NDArray[np.float64]:
    """Slow solve of Spark's implicit row problem by minimizing the full sum over
    *every* item (``c = 1 + alpha |t|`` and ``p = [t > 0]`` on rated items,
    ``c = 1, p = 0`` elsewhere) as one weighted least squares, float64."""
    y = np.asarray(all_item_vectors, dtype=np.float64)
    t = np.zeros(y.shape[0])
    t[np.asarray(positions, dtype=np.int64)] = np.asarray(targets, dtype=np.float64)
    rated = np.zeros(y.shape[0], dtype=bool)
    rated[np.asarray(positions, dtype=np.int64)] = True
    c = np.where(rated, 1.0 + alpha * np.abs(t), 1.0)
    p = (rated & (t > 0)).astype(np.float64)
    n = int(p.sum())
    k = y.shape[1]
    gram = (y * c[:, None]).T @ y + regularization * n * np.eye(k)
    return np.asarray(np.linalg.solve(gram, (y * c[:, None]).T @ p))


class _SparkFactorModel(Recommender):
    """What the two Spark models share: the Spark fit, the factor arrays,
    scoring, similar items and the stored tables."""

    user_factors_: NDArray[np.float32]
    item_factors_: NDArray[np.float32]
    user_bias_: NDArray[np.float32]
    item_bias_: NDArray[np.float32]
    offset_: float

    factors: int
    regularization: float
    iterations: int
    blocks: int
    random_state: int | None

    _implicit: ClassVar[bool] = False

    def _check_params(self) -> None:
        if int(self.factors) < 1:
            raise ValueError("factors must be >= 1")
        if not float(self.regularization) > 0:
            raise ValueError("regularization must be > 0")
        if int(self.iterations) < 1:
            raise ValueError("iterations must be >= 1")
        if int(self.blocks) < 0:
            raise ValueError("blocks must be >= 0 (0: Spark's default parallelism)")

    def _alpha(self) -> float:
        return 1.0

    def _spark_fit(self, data: Interactions, targets: NDArray[np.float32]) -> None:
        what = f"{type(self).__name__}.fit()"
        _require_pyspark(what)
        runtime = _current_runtime(what)
        rows, cols, _ = data.to_coo_arrays()
        self.user_factors_, self.item_factors_ = spark_factorize(
            rows,
            cols,
            targets,
            n_users=data.n_users,
            n_items=data.n_items,
            rank=int(self.factors),
            regularization=float(self.regularization),
            iterations=int(self.iterations),
            implicit=self._implicit,
            alpha=self._alpha(),
            blocks=int(self.blocks),
            seed=0 if self.random_state is None else int(self.random_state),
            runtime=runtime,
        )
        norms = np.linalg.norm(self.item_factors_.astype(np.float64), axis=1)
        self.item_unit_ = self.item_factors_.astype(np.float64) / np.where(norms > 0, norms, 1.0)[:, None]

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        dots = np.einsum(
            "nk,nk->n",
            self.user_factors_[users].astype(np.float64),
            self.item_factors_[items].astype(np.float64),
        )
        return self.offset_ + self.user_bias_[users] + self.item_bias_[items] + dots

    def _score_items(self, user: int) -> NDArray[np.float64]:
        return self.score_vector(self.user_factors_[user], float(self.user_bias_[user]))

    def _similar_scores(self, item: int) -> NDArray[np.float64]:
        # Cosine of item vectors; an item Spark never saw (zero vector) scores 0.
        return np.asarray(self.item_unit_ @ self.item_unit_[item], dtype=np.float64)

    def export_tables(self) -> FactorTables:
        return self._factor_tables(global_mean=float(self.offset_))


class SparkALS(_SparkFactorModel):
    """Explicit ALS on Spark: ``r̂_ui = mu + b_u + c_i + x_u . y_i``.

    ``mu, b_u, c_i`` are the regularized baseline (:func:`.base.baseline_biases`
    with penalty ``bias_regularization``) and Spark learns ``x, y`` from the residuals ``r - mu - b_u - c_i``
    under its own ALS-WR objective (see the module doc): Spark's explicit model
    has no bias terms, and on ML-100K the bias-free model on raw ratings is
    about 0.02 RMSE worse than this one (below). ``residuals="mean"`` keeps only
    ``mu``, ``"none"`` is plain Spark (``r̂ = x_u . y_i``).

    How the defaults were chosen: on a validation split of the ML-100K
    training part (:func:`recommender.engine.tune.validation_split`, 80/20
    per-user split, seed 0) at ``factors = 10``, 15 iterations: validation RMSE
    0.9205 / **0.9181** / 0.9245 / 0.9324 for ``regularization`` 0.12 / 0.15 /
    0.2 / 0.25 (0.5 and up collapse the factors to zero: 0.9407, the
    baseline), and 0.918-0.919 for ``bias_regularization`` 2 to 25. Raw
    ratings (``"none"``) were best at 0.1 with 0.9375. The engine's
    :class:`.als.ExplicitALS` under the same ALS-WR penalty
    (``regularization_exponent=1``) reaches 0.9184 there, its defaults
    (``n^0.5`` scaling, which Spark cannot express) 0.9072.
    """

    serving_kind: ClassVar[str | None] = RATING

    def __init__(
        self,
        *,
        factors: int = 10,
        regularization: float = 0.15,
        iterations: int = 15,
        residuals: str = "baseline",
        bias_regularization: float = 10.0,
        blocks: int = 0,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.iterations = iterations
        self.residuals = residuals
        self.bias_regularization = bias_regularization
        self.blocks = blocks
        self.random_state = random_state

    def _check_params(self) -> None:
        super()._check_params()
        if not float(self.bias_regularization) >= 0:
            raise ValueError("bias_regularization must be >= 0")
        if self.residuals not in RESIDUALS:
            raise ValueError(f"residuals must be one of {RESIDUALS}, got {self.residuals!r}")

    def _fit(self, data: Interactions) -> None:
        self._check_params()
        rows, cols, r = data.to_coo_arrays()
        if self.residuals == "baseline":
            self.offset_, self.user_bias_, self.item_bias_ = baseline_biases(
                data, regularization=float(self.bias_regularization)
            )
        else:
            self.offset_ = float(self.global_mean_) if self.residuals == "mean" else 0.0
            self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
            self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        targets = r.astype(np.float64) - self.offset_ - self.user_bias_[rows] - self.item_bias_[cols]
        self._spark_fit(data, targets.astype(np.float32))

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """A new user under Spark's explicit objective, the stored items fixed.

        The baseline's last user step first (``residuals="baseline"``)::

            b_u = sum_i (r_ui - mu - c_i) / (bias_regularization + n_u)

        then Spark's ALS-WR row solve on the residuals ``t = r - mu - b_u - c``::

            x_u = (Y_u^T Y_u + lambda n_u I)^-1 Y_u^T t

        Because Spark solves users last, a training user gets back their
        trained ``(x_u, b_u)`` up to float32 rounding.
        """
        self._check_params()
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        k = tables.n_factors
        if items.size == 0:
            return np.zeros(k), 0.0
        item_bias = np.asarray(tables.item_bias, dtype=np.float64)[items]
        residual = r - float(tables.global_mean) - item_bias
        bias = 0.0
        if self.residuals == "baseline":
            bias = float(residual.sum() / (float(self.bias_regularization) + items.size))
        y = np.asarray(tables.item_vectors, dtype=np.float64)[items]
        gram = y.T @ y + float(self.regularization) * items.size * np.eye(k)
        vector = np.linalg.solve(gram, y.T @ (residual - bias))
        return np.asarray(vector, dtype=np.float64), bias


class SparkImplicitALS(_SparkFactorModel):
    """Implicit ALS on Spark (Hu, Koren & Volinsky 2008 with Spark's scaling): scores ``x_u . y_i``.

    Spark gets ``f(r) = r - r_min + 1`` for every rating, so each rating is a
    positive preference with confidence ``1 + alpha f(r)``, as in
    :class:`.implicit_als.ImplicitALS`; unlike it, Spark scales the penalty by
    the row's count (``lambda n_u``), so ``regularization`` is on another
    scale. Ranking only: ``predict`` returns the regularized baseline.
    The defaults are Spark's own (``regParam=0.1``, ``alpha=1.0``, 10
    iterations), kept after a check on a validation split of the ML-100K
    training part (as for :class:`SparkALS`) at ``factors = 10``: NDCG@10
    **0.2219** beside ImplicitALS's 0.2210; ``regularization`` 0.01 / 1.0 gave
    0.2199 / 0.1885, and ``alpha = 10`` 0.149.
    """

    ranking_only = True
    serving_kind: ClassVar[str | None] = RANKING
    _implicit: ClassVar[bool] = True

    def __init__(
        self,
        *,
        factors: int = 10,
        regularization: float = 0.1,
        alpha: float = 1.0,
        iterations: int = 10,
        blocks: int = 0,
        random_state: int | None = 0,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.blocks = blocks
        self.random_state = random_state

    def _alpha(self) -> float:
        return float(self.alpha)

    def _check_params(self) -> None:
        super()._check_params()
        if not float(self.alpha) >= 0:
            raise ValueError("alpha must be >= 0")

    def _fit(self, data: Interactions) -> None:
        self._check_params()
        _, _, r = data.to_coo_arrays()
        self.offset_ = 0.0
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        strength = r.astype(np.float64) - float(self.rating_scale_[0]) + 1.0
        self._spark_fit(data, strength.astype(np.float32))

    def _predict_indices(self, users: NDArray[np.int64], items: NDArray[np.int64]) -> NDArray[np.float64]:
        # Ranking only: scores are not ratings, so predict the baseline (base class).
        return Recommender._predict_indices(self, users, items)

    def fold_in_from_tables(
        self, tables: FactorTables, item_positions: NDArray[np.integer[Any]], ratings: ArrayLike
    ) -> tuple[NDArray[np.float64], float]:
        """Spark's implicit row solve with the stored items fixed (bias 0)::

            t = r - r_min + 1,  c = 1 + alpha t
            x_u = (Y^T Y + sum_i alpha t_i y_i y_i^T + lambda n_u I)^-1 sum_i c_i y_i

        ``Y^T Y`` is the tables' cached Gram. A training user gets back their
        trained vector up to float32 rounding (Spark solves users last).
        """
        self._check_params()
        items = np.asarray(item_positions, dtype=np.int64).ravel()
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if items.shape != r.shape:
            raise ValueError("item positions and ratings must have the same length")
        k = tables.n_factors
        if items.size == 0:
            return np.zeros(k), 0.0
        t = r - float(tables.rating_scale[0]) + 1.0
        y = np.asarray(tables.item_vectors, dtype=np.float64)[items]
        alpha = float(self.alpha)
        gram = (
            tables.gram
            + (y * (alpha * t)[:, None]).T @ y
            + float(self.regularization) * items.size * np.eye(k)
        )
        vector = np.linalg.solve(gram, y.T @ (1.0 + alpha * t))
        return np.asarray(vector, dtype=np.float64), 0.0
