"""Benchmark ``manage.py import_movielens``: ML-100K into SQLite and PostgreSQL, and
``bench/synthetic.py``'s ML-20M-shaped set written as an ml-latest CSV into PostgreSQL
(written once, kept under ``$TASTEBASE_DATA_DIR/synthetic-csv``).

Each case runs ``migrate`` and the import as subprocesses against a fresh
database (a temporary SQLite file, or a PostgreSQL database created here and
dropped afterwards) and imports twice (the second run shows the idempotent path).
For each synthetic scale the same run first times the yardstick the import is
held to: a bare ``psql \\copy`` of the same ratings.csv into a plain table plus
one (user, item) index. Prints a markdown table and rewrites the "Import"
section of docs/benchmarks.md.

    python -m bench.bench_import                          # ML-100K, then 5M and 20M ratings
    python -m bench.bench_import --scales 0.25            # ML-100K and 5M only
    python -m bench.bench_import --scales --no-postgres --no-write   # a smoke run

PostgreSQL: ``--pg-url`` (default postgres://postgres@127.0.0.1:5432/postgres) must
be allowed to CREATE/DROP DATABASE; ``psql`` must be on the PATH.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import synthetic
from bench.common import command_line, manage, manage_env, ml100k_folder, postgres_database, write_section

HEADING = "## Import"


@dataclass
class Row:
    case: str
    database: str
    ratings: int
    seconds: float
    summary: str
    stages: str = ""
    #: Wall time over the bare COPY's of the same file (synthetic cases only).
    ratio: float | None = None


def bench_case(
    case: str, database: str, database_url: str, data: Path, ratings: int, timeout: float
) -> list[Row]:
    """Migrate a fresh database, then import ``data`` twice; one row per import."""
    env = import_env(database_url)
    manage(["migrate", "-v0"], env, timeout)
    rows = []
    for run in ("first import", "second import (no changes)"):
        print(f"{case} / {database}: {run} …", file=sys.stderr, flush=True)
        seconds, lines = manage(["import_movielens", str(data), "-v2"], env, timeout)
        summary = next(line for line in lines if line.startswith("users:"))
        stages = next((line for line in lines if line.startswith("seconds per stage:")), "")
        row = Row(f"{case}, {run}", database, ratings, seconds, summary, stages.partition(": ")[2])
        rows.append(row)
        print(f"  {seconds:.1f} s  {summary}  [{row.stages}]", file=sys.stderr, flush=True)
    return rows


def import_env(database_url: str) -> dict[str, str]:
    """DEBUG off: Django's debug query log would slow the import down."""
    return manage_env(database_url, DEBUG="0")


def write_synthetic(folder: Path, scale: float, seed: int = 0) -> int:
    """``bench/synthetic.py``'s set at ``scale`` as ml-latest ratings.csv + movies.csv; the rating count.

    Ids start at 1 as in MovieLens; timestamps are drawn uniformly over ML-20M's years.
    """
    arrays = synthetic.load(scale, seed)
    n_items = int(arrays["shape"][1])
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    genres = ["Action", "Adventure", "Comedy", "Drama", "Romance", "Sci-Fi", "Thriller", "Children"]
    with (folder / "movies.csv").open("w", encoding="utf-8") as out:
        out.write("movieId,title,genres\n")
        for item in range(1, n_items + 1):
            picked = "|".join(genres[(item + k) % len(genres)] for k in range(1 + item % 3))
            out.write(f'{item},"Movie {item}, The ({1920 + item % 100})",{picked}\n')
    users, items, scores = arrays["users"] + 1, arrays["items"] + 1, arrays["ratings"].astype(np.float64)
    stamps = rng.integers(828_000_000, 1_430_000_000, size=len(users))
    # Rows in a shuffled order, as nothing guarantees the order of a real file.
    order = rng.permutation(len(users))
    with (folder / "ratings.csv").open("w", encoding="ascii") as out:
        out.write("userId,movieId,rating,timestamp\n")
        step = 1_000_000
        for start in range(0, len(order), step):
            part = order[start : start + step]
            out.write(
                "".join(
                    f"{u},{i},{s},{t}\n"
                    for u, i, s, t in zip(
                        users[part].tolist(),
                        items[part].tolist(),
                        scores[part].tolist(),
                        stamps[part].tolist(),
                        strict=True,
                    )
                )
            )
    return len(users)


BARE_COPY_SQL = r"""
\set ON_ERROR_STOP on
CREATE TABLE bare_ratings (user_id integer, item_id integer, rating double precision, ts bigint);
\copy bare_ratings FROM '{path}' WITH (FORMAT csv, HEADER true)
CREATE INDEX ON bare_ratings (user_id, item_id);
"""


def bare_copy(database_url: str, ratings_csv: Path, timeout: float) -> float:
    """Wall seconds of one ``psql`` run: CREATE TABLE, ``\\copy`` the CSV, one (user, item) index."""
    script = BARE_COPY_SQL.format(path=str(ratings_csv).replace("'", "''"))
    started = time.perf_counter()
    subprocess.run(["psql", "-q", "-X", database_url], input=script, text=True, check=True, timeout=timeout)
    seconds = time.perf_counter() - started
    subprocess.run(
        ["psql", "-q", "-X", database_url, "-c", "DROP TABLE bare_ratings; CHECKPOINT"],
        check=True,
        timeout=timeout,
    )
    return seconds


NOTES = (
    "How the PostgreSQL import gets there (`ratings/bulk_load.py`): the parsed and validated ratings "
    "are sent with a binary COPY (the ratings file is parsed by one compiled pass over its bytes; a "
    "file with anything but plain numbers, or a bad value, goes through the vectorized general parser, "
    "which names the first bad line). Into an empty table they go straight in (ids reserved from the "
    "sequence in one call), after the primary key, the unique constraint, the three secondary "
    "indexes and both foreign keys are dropped; each is then built back once (a sorted build; one "
    "anti-join per foreign key). Into a table with ratings, the stored (user, item, score) triples "
    "are fetched as one binary array per column and 10M rows (`array_send(array_agg(…))`) and compared with the file in numpy; only new "
    "pairs and changed scores are written (through a temporary staging table), so a re-import of "
    "unchanged data writes nothing and leaves aggregates and user stamps alone. Django start-up and "
    "the parse of the whole file are part of every wall time; the bare COPY parses nothing in Python "
    "and maintains one index where `ratings_rating` has five. The machine is shared with other jobs: "
    "only the ratio to the bare COPY timed in the same run is comparable across runs (the load "
    "averages of each synthetic case are listed above the table's notes)."
)


def markdown_table(rows: list[Row]) -> list[str]:
    def ratio(row: Row) -> str:
        return "" if row.ratio is None else f"{row.ratio:.1f}×"

    return [
        "| case | database | ratings | wall time (s) | × bare COPY | seconds per stage | result |",
        "|---|---|---:|---:|---:|---|---|",
        *(
            f"| {r.case} | {r.database} | {r.ratings:,} | {r.seconds:.1f} | {ratio(r)} | {r.stages} | {r.summary} |"
            for r in rows
        ),
    ]


def section(rows: list[Row], extra: list[str]) -> str:
    """The body of the ``## Import`` section (``write_section`` adds the command line)."""
    return "\n".join(
        [
            "Wall time of `manage.py import_movielens PATH` as a subprocess (Django start-up included), "
            "each case on a freshly migrated database; the stages are the import's own timings (`-v2`), "
            "commit included.",
            "",
            *markdown_table(rows),
            "",
            *extra,
            "",
            NOTES,
        ]
    )


def synthetic_csv(scale: float) -> tuple[Path, int]:
    """The synthetic set at ``scale`` as ml-latest CSVs, written once and kept beside
    ``bench/synthetic.py``'s cache (outside the repository); its folder and rating count."""
    data = synthetic.cache_path(scale, 0).parent / "synthetic-csv" / f"scale{scale:g}"
    done = data / "ratings.count"
    if done.exists():
        return data, int(done.read_text())
    started = time.perf_counter()
    ratings = write_synthetic(data, scale)
    done.write_text(str(ratings))  # last: a crashed write is redone
    print(f"wrote {data} ({ratings:,} ratings) in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return data, ratings


def bench_synthetic(pg_url: str, scale: float, timeout: float) -> list[Row]:
    """Bare COPY, then a fresh import and a re-import of the same CSV, in one fresh database."""
    data, ratings = synthetic_csv(scale)
    shape = synthetic.load(scale)["shape"]
    label = f"synthetic scale {scale:g} ({int(shape[0]):,} users × {int(shape[1]):,} items)"
    with postgres_database(pg_url, f"tastebase_import_bench_{os.getpid()}") as url:
        print(f"{label}: bare COPY …", file=sys.stderr, flush=True)
        load_before = os.getloadavg()[0]
        bare = bare_copy(url, data / "ratings.csv", timeout)
        print(f"  {bare:.1f} s", file=sys.stderr, flush=True)
        rows = [Row(f"{label}, bare `psql \\copy` + one (user, item) index", "PostgreSQL", ratings, bare, "")]
        for row in bench_case(label, "PostgreSQL", url, data, ratings, timeout):
            row.ratio = row.seconds / bare
            rows.append(row)
    rows[0].ratio = 1.0
    LOADS.append(
        f"- {label}: 1-minute load average {load_before:.1f} before the bare COPY, "
        f"{os.getloadavg()[0]:.1f} after the re-import (2 CPUs)."
    )
    return rows


#: One line per synthetic case: how busy the machine was.
LOADS: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-ml100k", action="store_true", help="skip the ML-100K cases")
    parser.add_argument(
        "--scales",
        type=float,
        nargs="*",
        default=[0.25, 1.0],
        help="bench/synthetic.py scales to import into PostgreSQL (0.25: 5M ratings, 1: 20M); none skips",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="per subprocess, seconds")
    parser.add_argument("--no-write", action="store_true", help="print only, do not touch docs/benchmarks.md")
    args = parser.parse_args()

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="tastebase-bench-import-") as tmp:
        tmpdir = Path(tmp)
        if not args.no_ml100k:
            ml100k = ml100k_folder()
            rows += bench_case(
                "ML-100K", "SQLite", f"sqlite:///{tmpdir / 'bench.sqlite3'}", ml100k, 100_000, args.timeout
            )
            if not args.no_postgres:
                with postgres_database(args.pg_url, f"tastebase_import_bench_{os.getpid()}") as url:
                    rows += bench_case("ML-100K", "PostgreSQL", url, ml100k, 100_000, args.timeout)
        if not args.no_postgres:
            for scale in args.scales:
                rows += bench_synthetic(args.pg_url, scale, args.timeout)

    print("\n".join(markdown_table(rows)))
    if not args.no_write:
        write_section(
            "bench.bench_import", HEADING, section(rows, LOADS), command=command_line("bench.bench_import")
        )


if __name__ == "__main__":
    main()
